package privacy

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/audit"
)

// Erased is what replaces a person's address or name in text the kernel
// keeps (an event's data, a job's arguments, an error message).
const Erased = "[erased]"

// scrubber rewrites text and JSON that mention people (audit.Mentions): a
// person's user ID becomes their pseudonym (so that what stays still adds
// up), their address and name become Erased.
type scrubber struct {
	audit.Mentions
	pseudonyms map[string]string // lowercased user ID -> pseudonym
	ids        *regexp.Regexp
	emails     *regexp.Regexp // nil: none
	names      *regexp.Regexp // nil: none; as whole words
}

// newScrubber is a scrubber of people, the i-th one's ID becoming
// pseudonyms[i].
func newScrubber(people []audit.Person, pseudonyms []string) *scrubber {
	sc := &scrubber{Mentions: audit.MentionsOf(people...), pseudonyms: map[string]string{}}
	var ids, emails, names []string
	for i, p := range people {
		id := strings.ToLower(p.UserID)
		ids = append(ids, regexp.QuoteMeta(id))
		if i < len(pseudonyms) {
			sc.pseudonyms[id] = pseudonyms[i]
		}
		if e := strings.TrimSpace(p.Email); e != "" {
			emails = append(emails, regexp.QuoteMeta(e))
		}
	}
	for _, n := range sc.Names {
		names = append(names, regexp.QuoteMeta(n))
	}
	sc.ids = regexp.MustCompile(`(?i)(` + strings.Join(ids, "|") + `)`)
	if len(emails) > 0 {
		sc.emails = regexp.MustCompile(`(?i)(` + strings.Join(emails, "|") + `)`)
	}
	if len(names) > 0 {
		sc.names = regexp.MustCompile(`(?i)(^|[^\p{L}\p{N}_])(` + strings.Join(names, "|") + `)([^\p{L}\p{N}_]|$)`)
	}
	return sc
}

// text is s without the people; changed reports whether it differs.
func (sc *scrubber) text(s string) (string, bool) {
	out := s
	if sc.emails != nil {
		out = sc.emails.ReplaceAllLiteralString(out, Erased)
	}
	if sc.names != nil {
		out = sc.names.ReplaceAllString(out, "${1}"+Erased+"${3}")
	}
	out = sc.ids.ReplaceAllStringFunc(out, func(id string) string {
		if p, ok := sc.pseudonyms[strings.ToLower(id)]; ok {
			return p
		}
		return Erased
	})
	return out, out != s
}

// json is v (decoded JSON) without the person, in its strings and keys.
func (sc *scrubber) json(v any) (any, bool) {
	switch x := v.(type) {
	case string:
		return sc.text(x)
	case []any:
		changed := false
		for i := range x {
			var c bool
			x[i], c = sc.json(x[i])
			changed = changed || c
		}
		return x, changed
	case map[string]any:
		changed := false
		out := make(map[string]any, len(x))
		for k, val := range x {
			nk, ck := sc.text(k)
			nv, cv := sc.json(val)
			out[nk] = nv
			changed = changed || ck || cv
		}
		return out, changed
	}
	return v, false
}

// column is a text or JSON column scrubColumns rewrites.
type column struct {
	name string
	json bool
}

// mentionSQL is a SQL condition: the text expression mentions the people
// ($1: their substrings, $2: their words).
func mentionSQL(expr string) string { return audit.Condition(expr, 1, 2) }

// scrubColumns rewrites cols in the rows of table that where selects
// (with args from $3) and that mention the people, row by row by the
// primary key columns keys. Identifiers are the kernel's constants. It
// returns the rows changed.
func (sc *scrubber) scrubColumns(ctx context.Context, tx pgx.Tx, table string, keys []string, cols []column, where string, args ...any) (int64, error) {
	sel := make([]string, 0, len(keys)+len(cols))
	sel = append(sel, keys...)
	var conds []string
	for _, c := range cols {
		sel = append(sel, c.name+"::text")
		conds = append(conds, mentionSQL(c.name+"::text"))
	}
	q := fmt.Sprintf(`SELECT %s FROM %s WHERE (%s) AND (%s) FOR UPDATE`, strings.Join(sel, ", "), table, where, strings.Join(conds, " OR "))
	rows, err := tx.Query(ctx, q, append([]any{sc.Substrings, sc.Words}, args...)...)
	if err != nil {
		return 0, fmt.Errorf("reading %s: %w", table, err)
	}
	type change struct {
		key  []any
		vals []any
	}
	var changes []change
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			rows.Close()
			return 0, err
		}
		ch := change{key: vals[:len(keys)]}
		changed := false
		for i, c := range cols {
			raw, _ := vals[len(keys)+i].(string)
			if vals[len(keys)+i] == nil {
				ch.vals = append(ch.vals, nil)
				continue
			}
			if c.json {
				var v any
				if err := json.Unmarshal([]byte(raw), &v); err != nil {
					rows.Close()
					return 0, fmt.Errorf("%s.%s is not JSON: %w", table, c.name, err)
				}
				nv, ok := sc.json(v)
				b, err := json.Marshal(nv)
				if err != nil {
					rows.Close()
					return 0, err
				}
				ch.vals = append(ch.vals, string(b))
				changed = changed || ok
				continue
			}
			nv, ok := sc.text(raw)
			ch.vals = append(ch.vals, nv)
			changed = changed || ok
		}
		if changed {
			changes = append(changes, ch)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("reading %s: %w", table, err)
	}
	var set, cond []string
	for i, c := range cols {
		cast := ""
		if c.json {
			cast = "::jsonb"
		}
		set = append(set, fmt.Sprintf("%s = $%d%s", c.name, i+1, cast))
	}
	for i, k := range keys {
		cond = append(cond, fmt.Sprintf("%s = $%d", k, len(cols)+i+1))
	}
	upd := fmt.Sprintf(`UPDATE %s SET %s WHERE %s`, table, strings.Join(set, ", "), strings.Join(cond, " AND "))
	for _, ch := range changes {
		if _, err := tx.Exec(ctx, upd, append(ch.vals, ch.key...)...); err != nil {
			return 0, fmt.Errorf("rewriting %s: %w", table, err)
		}
	}
	return int64(len(changes)), nil
}
