package messaging

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// pgconnTag is the result of an Exec.
type pgconnTag = pgconn.CommandTag

// newID is a new UUIDv7: unique, and sortable by creation time.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// nilUUID is id, or the nil UUID when id is empty (a cursor's ID on a
// first page, which the query then ignores).
func nilUUID(id string) string {
	if id == "" {
		return uuid.Nil.String()
	}
	return id
}

// now is the plugin's clock (UTC). Tests set their own (export_test.go).
func (p *Plugin) now() time.Time {
	if p.clock != nil {
		return p.clock().UTC()
	}
	return time.Now().UTC()
}

// blank answers the 422 of a text field that holds nothing to show.
func blank(field string) error {
	return sdk.Invalid(sdk.FieldError{Field: field, Message: "must not be blank"})
}

// invalid answers a 422 with one field error and a code.
func invalid(code, field, format string, args ...any) error {
	return sdk.Invalid(sdk.FieldError{Field: field, Message: fmt.Sprintf(format, args...)}).WithCode(code)
}

// uniqueIDs normalises a list of UUIDs (the schema checked their form)
// and refuses one given twice, naming it.
func uniqueIDs(field string, ids []string) ([]string, error) {
	seen := map[string]bool{}
	out := make([]string, 0, len(ids))
	for i, id := range ids {
		n, ok := sdk.NormalizeUUID(id)
		if !ok {
			return nil, invalid("invalid", fmt.Sprintf("%s.%d", field, i), "must be a UUID")
		}
		if seen[n] {
			return nil, invalid("duplicate", fmt.Sprintf("%s.%d", field, i), "is given twice")
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// truncate cuts s to at most n runes, with an ellipsis.
func truncate(s string, n int) string {
	s = strings.TrimSpace(s)
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
