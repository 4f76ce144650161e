package httpapi

import (
	"cmp"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/sdk"
)

// GrantsQuery is what GET /api/v1/tenant/grants reads.
type GrantsQuery struct {
	Kind   string `query:"kind" enum:"membership,role,custom_role,api_key" doc:"Only grants of this kind."`
	UserID string `query:"user_id" format:"uuid" doc:"Only this member's grants: their membership, their roles, the API keys they created."`
	Orphan string `query:"orphan" enum:"true,false" doc:"Only orphan grants (true), or only the others (false)."`
	PageQuery
}

// listGrants pages the institution's grants in (kind, id) order. The
// population is made whole for each page (whether a grant is an orphan
// depends on the others), then filtered and cut.
func (s *Server) listGrants(c echo.Context) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	if len(pg.After) != 0 && len(pg.After) != 2 {
		return badCursor()
	}
	var fields []sdk.FieldError
	kind, orphan := c.QueryParam("kind"), c.QueryParam("orphan")
	switch kind {
	case "", sdk.GrantMembership, sdk.GrantRole, sdk.GrantCustomRole, sdk.GrantAPIKey:
	default:
		fields = append(fields, sdk.FieldError{Field: "kind", Message: "must be membership, role, custom_role or api_key"})
	}
	user := c.QueryParam("user_id")
	if user != "" {
		id, err := uuid.Parse(user)
		if err != nil {
			fields = append(fields, sdk.FieldError{Field: "user_id", Message: "is not a user ID"})
		}
		user = id.String()
	}
	if orphan != "" && orphan != "true" && orphan != "false" {
		fields = append(fields, sdk.FieldError{Field: "orphan", Message: "must be true or false"})
	}
	if len(fields) > 0 {
		return sdk.Invalid(fields...)
	}
	grants, err := s.Plugins.Grants(c.Request().Context(), principalOf(c).TenantID)
	if err != nil {
		return err
	}
	slices.SortFunc(grants, func(a, b sdk.Grant) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.ID, b.ID))
	})
	out := make([]sdk.Grant, 0, pg.Limit+1)
	for _, g := range grants {
		switch {
		case len(pg.After) == 2 && cmp.Or(strings.Compare(g.Kind, pg.After[0]), strings.Compare(g.ID, pg.After[1])) <= 0:
		case kind != "" && g.Kind != kind:
		case user != "" && g.UserID != user:
		case orphan != "" && g.Orphan != (orphan == "true"):
		default:
			out = append(out, g)
		}
		if len(out) > pg.Limit {
			break
		}
	}
	return c.JSON(http.StatusOK, sdk.NewPage(out, pg.Limit, func(g sdk.Grant) []string { return []string{g.Kind, g.ID} }))
}
