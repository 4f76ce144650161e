package governance

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// pluginActor names the plugin itself as the actor of what it does on its
// own (a scheduled retention run, a receipt).
const pluginActor = "plugin:" + Name

// actor names a request's principal in the plugin's tables.
func actor(p sdk.Principal) string { return strings.ToLower(p.Actor()) }

// trimmed is a text field without its surrounding whitespace; a required
// one that is blank is a field error.
func trimmed(bad *[]sdk.FieldError, field, value string, required bool) string {
	v := strings.TrimSpace(value)
	if required && v == "" {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must not be blank"})
	}
	return v
}

// isUnique reports whether err is a unique violation (of constraint, when
// given).
func isUnique(err error, constraint string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && (constraint == "" || pg.ConstraintName == constraint)
}

// audit writes an entry to the institution's audit log, after the change
// committed. A failure is logged, not returned: the change stands.
func (p *Plugin) audit(ctx context.Context, s sdk.Scope, who sdk.Principal, requestID, action, targetType, targetID string, details any) {
	err := s.Host().Audit(context.WithoutCancel(ctx), sdk.AuditEntry{
		TenantID: s.Tenant(), Actor: who, Action: action, TargetType: targetType, TargetID: targetID, Details: details, RequestID: requestID,
	})
	if err != nil && p.env != nil {
		p.env.Logger.Error("writing an audit entry", "action", action, "error", err)
	}
}

// utc is t in UTC, at microsecond precision (what Postgres keeps).
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
