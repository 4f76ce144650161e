package schema

import (
	"bytes"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Violation is one field of a value and what is wrong with it. Field is a
// dotted path ("assets.0.url"); a problem with the value as a whole has
// the root's name.
type Violation struct {
	Field   string
	Message string
}

// Decode reads JSON for Validate, keeping numbers exact.
func Decode(b []byte) (any, error) {
	return jsonschema.UnmarshalJSON(bytes.NewReader(b))
}

// Validate checks doc (from Decode) against s and lists what is wrong, each
// under the name of its field, prefixed with root ("config.label"; root ""
// names fields plainly, and the value as a whole "body"). Strings holding
// NUL characters are refused whatever the schema says: no text column can
// store them.
func Validate(s *jsonschema.Schema, doc any, root string) []Violation {
	var out []Violation
	nulStrings(doc, nil, func(path []string) {
		out = append(out, Violation{Field: fieldName(root, path), Message: "must not contain NUL characters (\\u0000)"})
	})
	if s == nil {
		return out
	}
	err := s.Validate(doc)
	var ve *jsonschema.ValidationError
	if err == nil || !errors.As(err, &ve) {
		return out
	}
	for _, leaf := range leaves(ve) {
		out = append(out, violations(leaf, root)...)
	}
	return dedupe(out)
}

// leaves are the errors that say what is wrong, not that a group failed.
// Of a nullable schema's "null or ..." alternatives, the null one is left
// out: "must be null" helps nobody.
func leaves(ve *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(ve.Causes) == 0 {
		return []*jsonschema.ValidationError{ve}
	}
	causes := ve.Causes
	if _, ok := ve.ErrorKind.(*kind.AnyOf); ok || isOneOf(ve) {
		var rest []*jsonschema.ValidationError
		for _, c := range causes {
			if t, ok := c.ErrorKind.(*kind.Type); ok && slices.Equal(t.Want, []string{"null"}) {
				continue
			}
			rest = append(rest, c)
		}
		if len(rest) > 0 {
			causes = rest
		}
	}
	var out []*jsonschema.ValidationError
	for _, c := range causes {
		out = append(out, leaves(c)...)
	}
	return out
}

func isOneOf(ve *jsonschema.ValidationError) bool {
	_, ok := ve.ErrorKind.(*kind.OneOf)
	return ok
}

var english = message.NewPrinter(language.English)

func violations(ve *jsonschema.ValidationError, root string) []Violation {
	at := fieldName(root, ve.InstanceLocation)
	one := func(m string) []Violation { return []Violation{{Field: at, Message: m}} }
	switch k := ve.ErrorKind.(type) {
	case *kind.Required:
		var out []Violation
		for _, m := range k.Missing {
			out = append(out, Violation{Field: fieldName(root, append(slices.Clone(ve.InstanceLocation), m)), Message: "is required"})
		}
		return out
	case *kind.AdditionalProperties:
		var out []Violation
		for _, p := range k.Properties {
			out = append(out, Violation{Field: fieldName(root, append(slices.Clone(ve.InstanceLocation), p)), Message: "is not a known field"})
		}
		return out
	case *kind.Type:
		return one("must be " + typeWords(k.Want))
	case *kind.Enum:
		var vals []string
		for _, w := range k.Want {
			if w == nil {
				vals = append(vals, "null")
				continue
			}
			vals = append(vals, fmt.Sprint(w))
		}
		return one("must be one of: " + strings.Join(vals, ", "))
	case *kind.Const:
		return one(fmt.Sprintf("must be %v", k.Want))
	case *kind.Format:
		return one(formatWords(k.Want))
	case *kind.MinLength:
		return one(fmt.Sprintf("must be at least %d %s long", k.Want, plural(k.Want, "character")))
	case *kind.MaxLength:
		return one(fmt.Sprintf("must be at most %d %s long", k.Want, plural(k.Want, "character")))
	case *kind.Pattern:
		return one(fmt.Sprintf("must match the pattern %s", k.Want))
	case *kind.Minimum:
		return one("must be at least " + ratString(k.Want))
	case *kind.Maximum:
		return one("must be at most " + ratString(k.Want))
	case *kind.ExclusiveMinimum:
		return one("must be greater than " + ratString(k.Want))
	case *kind.ExclusiveMaximum:
		return one("must be less than " + ratString(k.Want))
	case *kind.MultipleOf:
		return one("must be a multiple of " + ratString(k.Want))
	case *kind.MinItems:
		return one(fmt.Sprintf("must have at least %d %s", k.Want, plural(k.Want, "item")))
	case *kind.MaxItems:
		return one(fmt.Sprintf("must have at most %d %s", k.Want, plural(k.Want, "item")))
	case *kind.UniqueItems:
		return one(fmt.Sprintf("must not repeat an item (items %d and %d are the same)", k.Duplicates[0], k.Duplicates[1]))
	case *kind.MinProperties:
		return one(fmt.Sprintf("must have at least %d %s", k.Want, plural(k.Want, "field")))
	case *kind.MaxProperties:
		return one(fmt.Sprintf("must have at most %d %s", k.Want, plural(k.Want, "field")))
	case *kind.FalseSchema:
		return one("is not allowed")
	}
	return one(ve.ErrorKind.LocalizedString(english))
}

func fieldName(root string, path []string) string {
	if len(path) == 0 {
		if root == "" {
			return "body"
		}
		return root
	}
	p := strings.Join(path, ".")
	if root == "" {
		return p
	}
	return root + "." + p
}

func typeWords(want []string) string {
	words := map[string]string{
		"string": "a string", "integer": "an integer", "number": "a number", "boolean": "true or false",
		"object": "an object", "array": "a list", "null": "null",
	}
	var out []string
	for _, w := range want {
		if x, ok := words[w]; ok {
			out = append(out, x)
		} else {
			out = append(out, w)
		}
	}
	return strings.Join(out, " or ")
}

func formatWords(f string) string {
	switch f {
	case "uuid":
		return "must be a UUID"
	case "date-time":
		return "must be a date and time in RFC 3339 form, such as 2026-12-01T09:30:00Z"
	case "date":
		return "must be a date in the form YYYY-MM-DD"
	case "time":
		return "must be a time of day in the form HH:MM:SS"
	case "email":
		return "must be an email address"
	case "uri":
		return "must be an absolute URL"
	case "duration":
		return "must be an ISO 8601 duration, such as P1D"
	}
	return "must be a valid " + f
}

func plural(n int, word string) string {
	if n == 1 {
		return word
	}
	return word + "s"
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(6)
}

// nulStrings calls found with the path of each string (or object key)
// holding a NUL character.
func nulStrings(v any, path []string, found func([]string)) {
	switch x := v.(type) {
	case string:
		if strings.IndexByte(x, 0) >= 0 {
			found(slices.Clone(path))
		}
	case map[string]any:
		for k, e := range x {
			p := append(path, k)
			if strings.IndexByte(k, 0) >= 0 {
				found(slices.Clone(p))
				continue
			}
			nulStrings(e, p, found)
		}
	case []any:
		for i, e := range x {
			nulStrings(e, append(path, fmt.Sprint(i)), found)
		}
	}
}

func dedupe(in []Violation) []Violation {
	seen := map[Violation]bool{}
	out := in[:0]
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	slices.SortStableFunc(out, func(a, b Violation) int { return strings.Compare(a.Field, b.Field) })
	return out
}
