package audit

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Person is whom an erasure is about, as the audit log (and the kernel's
// other records) may mention them: their user ID, and their email address
// and name as text.
type Person struct {
	UserID, Email, Name string
}

// MinNameRunes is the shortest name looked for in text: a shorter one
// ("Al") is too likely to be part of something else.
const MinNameRunes = 4

// Mentions is how text mentions people: it contains one of their user IDs
// or email addresses (case-insensitively, also as escaped inside a JSON
// string), or one of their names as whole words (case-insensitively: "Ada
// Lovelace" in "by Ada Lovelace.", not "Ada" in "Adagio").
type Mentions struct {
	// Substrings are the lowercased IDs and addresses.
	Substrings []string
	// Words are PostgreSQL regular expressions of the names as words.
	Words []string
	// Names are the names themselves.
	Names []string
}

// MentionsOf is how text mentions people.
func MentionsOf(people ...Person) Mentions {
	m := Mentions{Substrings: []string{}, Words: []string{}}
	add := func(s string) {
		s = strings.ToLower(strings.TrimSpace(s))
		if s == "" {
			return
		}
		m.Substrings = append(m.Substrings, s)
		if b, err := json.Marshal(s); err == nil {
			if esc := string(b[1 : len(b)-1]); esc != s {
				m.Substrings = append(m.Substrings, esc)
			}
		}
	}
	for _, p := range people {
		add(p.UserID)
		add(p.Email)
		name := strings.TrimSpace(p.Name)
		if utf8.RuneCountInString(name) < MinNameRunes {
			continue
		}
		m.Names = append(m.Names, name)
		m.Words = append(m.Words, `(^|[^[:alnum:]_])`+regexp.QuoteMeta(name)+`([^[:alnum:]_]|$)`)
		if b, err := json.Marshal(name); err == nil {
			if esc := string(b[1 : len(b)-1]); esc != name {
				m.Words = append(m.Words, `(^|[^[:alnum:]_])`+regexp.QuoteMeta(esc)+`([^[:alnum:]_]|$)`)
			}
		}
	}
	return m
}

// Empty reports whether nothing can mention them.
func (m Mentions) Empty() bool { return len(m.Substrings) == 0 && len(m.Words) == 0 }

// Condition is a SQL condition: the text expression expr mentions them,
// given Substrings as the parameter $subs and Words as $words.
func Condition(expr string, subs, words int) string {
	return fmt.Sprintf(`(%[1]s IS NOT NULL AND (EXISTS (SELECT 1 FROM unnest($%[2]d::text[]) n WHERE strpos(lower(%[1]s), n) > 0)
		OR EXISTS (SELECT 1 FROM unnest($%[3]d::text[]) w WHERE %[1]s ~* w)))`, expr, subs, words)
}
