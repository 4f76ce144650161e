package sdk

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors shared by the kernel and plugins. The kernel turns each into
// one HTTP status and an RFC 9457 problem+json body in a single place, so a
// handler only has to return (or wrap) one of these.
//
// Since: v1.0
var (
	// ErrInvalid: the request is well-formed but its content is not acceptable (422).
	ErrInvalid = errors.New("invalid")
	// ErrBadRequest: the request cannot be read at all (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnauthorized: no valid credentials (401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: credentials are valid but do not allow this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no such resource visible to the caller (404).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the request conflicts with the current state (409).
	ErrConflict = errors.New("conflict")
	// ErrGone: the resource existed but is no longer usable (410).
	ErrGone = errors.New("gone")
	// ErrTooManyRequests: the caller must slow down (429).
	ErrTooManyRequests = errors.New("too many requests")
	// ErrUnavailable: a dependency is temporarily unavailable (503).
	ErrUnavailable = errors.New("unavailable")
	// ErrTooLarge: the content is larger than allowed (413), such as an
	// object over the plugin's storage limits. Since: v1.2
	ErrTooLarge = errors.New("too large")
)

// FieldError names one field of a request and what is wrong with it.
// Field is a JSON pointer-like dotted path ("roles.0", "email").
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error with a human-readable detail, an optional machine code
// and optional field errors, wrapping one of the sentinel errors above.
//
//	return sdk.Errorf(sdk.ErrConflict, "email %q is already registered", email)
type Error struct {
	Kind   error        // one of the sentinels: ErrInvalid, ErrNotFound, ...
	Code   string       // optional stable machine code, e.g. "account_locked"
	Detail string       // human-readable explanation for the client
	Fields []FieldError // field-level detail, mostly with ErrInvalid

	// RetryAfterSeconds, when positive, is sent as a Retry-After header.
	RetryAfterSeconds int
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if len(e.Fields) > 1 {
		for _, f := range e.Fields {
			fmt.Fprintf(&b, "; %s: %s", f.Field, f.Message)
		}
	}
	return b.String()
}

// Unwrap lets errors.Is match the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Errorf returns an *Error of the given kind with a formatted detail.
func Errorf(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Detail: fmt.Sprintf(format, args...)}
}

// Invalid returns an ErrInvalid error carrying field errors.
func Invalid(fields ...FieldError) *Error {
	detail := "the request has invalid fields"
	if len(fields) == 1 {
		detail = fields[0].Field + ": " + fields[0].Message
	}
	return &Error{Kind: ErrInvalid, Detail: detail, Fields: fields}
}

// WithCode sets a machine-readable code and returns the error.
func (e *Error) WithCode(code string) *Error { e.Code = code; return e }

// kindNames are the wire names of the sentinel errors (the plugin
// protocol's Error.kind; wire.Kinds maps them to HTTP). Append-only.
var kindNames = []struct {
	err  error
	name string
}{
	{ErrInvalid, "invalid"},
	{ErrBadRequest, "bad_request"},
	{ErrUnauthorized, "unauthorized"},
	{ErrForbidden, "forbidden"},
	{ErrNotFound, "not_found"},
	{ErrConflict, "conflict"},
	{ErrGone, "gone"},
	{ErrTooManyRequests, "too_many_requests"},
	{ErrUnavailable, "unavailable"},
	{ErrTooLarge, "too_large"}, // Since: v1.2
}

// kindName is the wire name of the sentinel err wraps, or "internal".
func kindName(err error) string {
	for _, k := range kindNames {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "internal"
}
