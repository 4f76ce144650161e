package problem

import (
	"errors"
	"net/http"
	"strings"

	"github.com/edulure/edulure/sdk"
)

// ContentType is the media type of problem documents.
const ContentType = "application/problem+json"

// TypeBase prefixes every problem type URI; docs/api.md lists them.
const TypeBase = "https://edulure.dev/problems/"

// Source says who caused a problem.
type Source string

// Enum lists the sources, for the OpenAPI document.
func (Source) Enum() []string {
	return []string{string(SourceClient), string(SourceKernel), string(SourcePlugin)}
}

const (
	SourceClient Source = "client"
	SourceKernel Source = "kernel"
	SourcePlugin Source = "plugin"
)

// Problem is an RFC 9457 problem details document with Edulure's extensions.
type Problem struct {
	Type      string           `json:"type" format:"uri" doc:"A URI naming the kind of problem: https://edulure.dev/problems/<code>."`
	Title     string           `json:"title" doc:"The status's text."`
	Status    int              `json:"status" minimum:"400" maximum:"599"`
	Detail    string           `json:"detail,omitempty" doc:"What went wrong, for a person."`
	Instance  string           `json:"instance,omitempty" doc:"The path of the request."`
	Code      string           `json:"code,omitempty" doc:"The kind of problem, for a program: invalid-request, permission-denied, ..."`
	Errors    []sdk.FieldError `json:"errors,omitempty" doc:"Each wrong field or parameter (422)."`
	RequestID string           `json:"request_id,omitempty" doc:"The request's ID, as in the X-Request-ID header and the logs."`
	Source    Source           `json:"source,omitempty" doc:"Who is at fault."`

	RetryAfter int `json:"-"` // seconds; sent as a Retry-After header when positive
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// New builds a problem for a status with a detail message.
func New(status int, code, detail string) *Problem {
	if code == "" {
		code = defaultCode(status)
	}
	return &Problem{
		Type:   TypeBase + code,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
		Source: sourceFor(status),
	}
}

var kinds = []struct {
	err    error
	status int
	code   string
}{
	{sdk.ErrInvalid, http.StatusUnprocessableEntity, "invalid-request"},
	{sdk.ErrBadRequest, http.StatusBadRequest, "bad-request"},
	{sdk.ErrUnauthorized, http.StatusUnauthorized, "unauthorized"},
	{sdk.ErrForbidden, http.StatusForbidden, "forbidden"},
	{sdk.ErrNotFound, http.StatusNotFound, "not-found"},
	{sdk.ErrConflict, http.StatusConflict, "conflict"},
	{sdk.ErrGone, http.StatusGone, "gone"},
	{sdk.ErrTooManyRequests, http.StatusTooManyRequests, "rate-limited"},
	{sdk.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
	{sdk.ErrTooLarge, http.StatusRequestEntityTooLarge, "too-large"},
}

// FromError maps an error to a problem. sdk errors keep their detail, code
// and field errors; anything unrecognised is a 500 whose detail does not
// leak internals (the caller logs the real error).
func FromError(err error) *Problem {
	var p *Problem
	if errors.As(err, &p) {
		return p
	}
	for _, k := range kinds {
		if !errors.Is(err, k.err) {
			continue
		}
		var se *sdk.Error
		if errors.As(err, &se) {
			code := k.code
			if se.Code != "" {
				code = se.Code
			}
			out := New(k.status, code, se.Detail)
			out.Errors = se.Fields
			out.RetryAfter = se.RetryAfterSeconds
			return out
		}
		return New(k.status, k.code, strings.TrimPrefix(err.Error(), k.err.Error()+": "))
	}
	out := New(http.StatusInternalServerError, "internal", "an internal error occurred; it has been logged with this request's ID")
	out.Source = SourceKernel
	return out
}

func defaultCode(status int) string {
	if status == http.StatusRequestEntityTooLarge {
		return "body-too-large" // a request over the body limit; sdk.ErrTooLarge says "too-large"
	}
	for _, k := range kinds {
		if k.status == status {
			return k.code
		}
	}
	switch status {
	case http.StatusRequestEntityTooLarge:
		return "body-too-large"
	case http.StatusMethodNotAllowed:
		return "method-not-allowed"
	case http.StatusUnsupportedMediaType:
		return "unsupported-media-type"
	case http.StatusGatewayTimeout:
		return "timeout"
	case http.StatusBadGateway:
		return "bad-gateway"
	}
	return strings.ToLower(strings.ReplaceAll(http.StatusText(status), " ", "-"))
}

func sourceFor(status int) Source {
	if status >= 500 {
		return SourceKernel
	}
	return SourceClient
}
