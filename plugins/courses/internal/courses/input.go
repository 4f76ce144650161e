package courses

import (
	"fmt"
	"strings"

	"github.com/edulure/edulure/sdk"
)

// The kernel has checked a request's body against its type's schema before
// a handler runs: its fields' types, lengths, ranges, enums and formats,
// and that it holds no unknown field. The helpers below check what a
// schema cannot say, answering the same 422 naming fields.

// trimmed is a text field without its surrounding whitespace. The schema
// bounds its length; a required field that is only whitespace is a
// FieldError (minLength counts the spaces).
func trimmed(bad *[]sdk.FieldError, field, value string, required bool) string {
	v := strings.TrimSpace(value)
	if required && v == "" {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must not be blank"})
	}
	return v
}

// checkAssets checks what the schema of Asset cannot say: an http(s) URL
// without whitespace, and a MIME type of the form type/subtype.
func checkAssets(bad *[]sdk.FieldError, field string, assets []Asset) {
	for i, a := range assets {
		f := fmt.Sprintf("%s.%d", field, i)
		if !(strings.HasPrefix(a.URL, "https://") || strings.HasPrefix(a.URL, "http://")) || strings.ContainsAny(a.URL, " \t\r\n") {
			*bad = append(*bad, sdk.FieldError{Field: f + ".url", Message: "must be an http(s) URL"})
		}
		if typ, sub, ok := strings.Cut(a.Type, "/"); !ok || typ == "" || sub == "" {
			*bad = append(*bad, sdk.FieldError{Field: f + ".type", Message: "must be a MIME type such as video/mp4"})
		}
	}
}

// notNull is the value of a PATCH field that may be absent but not null,
// and whether it was sent with one: a null is a FieldError. (Optional's
// NotNull answers one error; a PATCH names every wrong field at once.)
func notNull[T any](bad *[]sdk.FieldError, field string, o sdk.Optional[T]) (T, bool) {
	if o.Null() {
		*bad = append(*bad, sdk.FieldError{Field: field, Message: "must not be null"})
	}
	return o.Get()
}

// notNullText is notNull for a text field, trimmed as trimmed does; nil
// when absent.
func notNullText(bad *[]sdk.FieldError, field string, o sdk.Optional[string], required bool) *string {
	v, ok := notNull(bad, field, o)
	if !ok {
		return nil
	}
	v = trimmed(bad, field, v, required)
	return &v
}
