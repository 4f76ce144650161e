package httpapi

import (
	"net/http"
	"regexp"
	"sort"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/sdk"
)

// AuditQuery is what the audit log's lists read.
type AuditQuery struct {
	Action    string `query:"action" maxLength:"120" doc:"Only this action (tenancy.member.removed), or with a final dot a family of them (tenancy.member.)."`
	ActorType string `query:"actor_type" enum:"user,apikey,operator,system,anonymous,link" doc:"Only entries of this kind of actor."`
	ActorID   string `query:"actor_id" maxLength:"200" doc:"Only entries of this actor (a user's or API key's ID)."`
	Target    string `query:"target" maxLength:"500" doc:"Only entries about this target, as entries name it (a user ID, plugin:courses, ...)."`
	From      string `query:"from" format:"date-time" doc:"Only entries written at or after this time (RFC 3339)."`
	To        string `query:"to" format:"date-time" doc:"Only entries written before this time (RFC 3339)."`
	PageQuery
}

var auditAction = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?$`)

// auditFilter reads and checks an AuditQuery.
func auditFilter(c echo.Context) (audit.Filter, error) {
	f := audit.Filter{Action: c.QueryParam("action"), ActorType: c.QueryParam("actor_type"), ActorID: c.QueryParam("actor_id"), Target: c.QueryParam("target")}
	var fields []sdk.FieldError
	if f.Action != "" && (len(f.Action) > 120 || !auditAction.MatchString(f.Action)) {
		fields = append(fields, sdk.FieldError{Field: "action", Message: "must be an action such as tenancy.member.removed, or a family such as tenancy.member."})
	}
	switch f.ActorType {
	case "", "user", "apikey", "operator", "system", "anonymous", "link":
	default:
		fields = append(fields, sdk.FieldError{Field: "actor_type", Message: "must be user, apikey, operator, system, anonymous or link"})
	}
	if len(f.ActorID) > 200 {
		fields = append(fields, sdk.FieldError{Field: "actor_id", Message: "must be at most 200 characters"})
	}
	if len(f.Target) > 500 {
		fields = append(fields, sdk.FieldError{Field: "target", Message: "must be at most 500 characters"})
	}
	f.From, f.To = timeRange(c, &fields)
	if len(fields) > 0 {
		sort.Slice(fields, func(i, j int) bool { return fields[i].Field < fields[j].Field })
		return f, sdk.Invalid(fields...)
	}
	return f, nil
}

func (s *Server) listAudit(c echo.Context, tenantID uuid.UUID) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterInt(pg)
	if err != nil {
		return err
	}
	f, err := auditFilter(c)
	if err != nil {
		return err
	}
	f.Before, f.Limit = before, pg.Limit+1
	tid := ""
	if tenantID != uuid.Nil {
		tid = tenantID.String()
	}
	entries, err := audit.ListFiltered(c.Request().Context(), s.Pool, tid, f)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(entries, pg.Limit, func(e audit.Entry) []string { return intKey(e.ID) }))
}

func (s *Server) tenantAudit(c echo.Context) error { return s.listAudit(c, principalOf(c).TenantID) }

func (s *Server) verifyTenantAudit(c echo.Context) error {
	res, err := audit.Verify(c.Request().Context(), s.Pool, principalOf(c).TenantID.String())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}
