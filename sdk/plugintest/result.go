package plugintest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// ProblemContentType is the media type of error answers (RFC 9457).
const ProblemContentType = "application/problem+json"

// ProblemTypeBase prefixes the type URI of every problem the kernel sends.
const ProblemTypeBase = "https://edulure.dev/problems/"

// Result is the answer a client of the kernel would get.
type Result struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it cannot.
func (r *Result) JSON(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("plugintest: decoding the body of %d answer as %T: %v\nbody: %s", r.Status, v, err, r.Body)
	}
}

// Problem decodes an error answer. It is the zero Problem when the answer
// is not application/problem+json.
func (r *Result) Problem() Problem {
	var p Problem
	if r.Header.Get("Content-Type") != ProblemContentType || json.Unmarshal(r.Body, &p) != nil {
		return Problem{}
	}
	p.Kind = kindOf(p.Status)
	return p
}

// String is the status and body, for failure messages:
// require.Equal(t, 201, res.Status, res).
func (r *Result) String() string {
	return strconv.Itoa(r.Status) + " " + http.StatusText(r.Status) + ": " + string(r.Body)
}

// Problem is an RFC 9457 problem document as the kernel sends it.
type Problem struct {
	Type      string           `json:"type"`
	Title     string           `json:"title"`
	Status    int              `json:"status"`
	Detail    string           `json:"detail,omitempty"`
	Instance  string           `json:"instance,omitempty"`
	Code      string           `json:"code,omitempty"` // a handler's sdk.Error Code, else the kernel's ("invalid-request", "permission-denied", ...)
	Fields    []sdk.FieldError `json:"errors,omitempty"`
	RequestID string           `json:"request_id,omitempty"`
	Source    string           `json:"source,omitempty"` // "client", "kernel" or "plugin": who is at fault

	// Kind is the wire name of the sdk error of Status: "invalid",
	// "not_found", ... or "internal" (see wire.Kinds).
	Kind string `json:"-"`
}

// FieldNames lists the names of the fields the problem says are wrong.
func (p Problem) FieldNames() []string {
	out := make([]string, 0, len(p.Fields))
	for _, f := range p.Fields {
		out = append(out, f.Field)
	}
	return out
}

func kindOf(status int) string {
	for _, k := range wire.Kinds {
		if k.Status == status {
			return k.Name
		}
	}
	if status == wire.Internal.Status {
		return wire.Internal.Name
	}
	return ""
}

// errorResult is the kernel's answer to a handler's error.
func (h *Harness) errorResult(e *pluginv1.Error, path, requestID string) *Result {
	k := wire.KindNamed(e.Kind)
	p := &Problem{Status: k.Status, Code: k.Code, Detail: e.Detail, Instance: path, RequestID: requestID, Source: "client"}
	if e.Code != "" && k != wire.Internal {
		p.Code = e.Code
	}
	for _, f := range e.Fields {
		p.Fields = append(p.Fields, sdk.FieldError{Field: f.Field, Message: f.Message})
	}
	if p.Status >= 500 {
		p.Source = "plugin"
	}
	if k == wire.Internal {
		p.Code, p.Fields = wire.Internal.Code, nil
		p.Detail = fmt.Sprintf("plugin %q failed to handle the request; its log has the details under this request ID", h.manifest.Name)
	}
	res := problemResult(p)
	if e.RetryAfterSeconds > 0 {
		res.Header.Set("Retry-After", strconv.Itoa(int(e.RetryAfterSeconds)))
	}
	return res
}

// refusalResult is the kernel's answer to a request the route's contract
// refuses.
func refusalResult(r *wire.Refusal, path, requestID string) *Result {
	p := &Problem{Status: r.Kind.Status, Code: r.Kind.Code, Detail: r.Detail, Instance: path, RequestID: requestID, Source: "client"}
	for _, f := range r.Fields {
		p.Fields = append(p.Fields, sdk.FieldError{Field: f.Field, Message: f.Message})
	}
	return problemResult(p)
}

func problemResult(p *Problem) *Result {
	p.Type, p.Title = ProblemTypeBase+p.Code, http.StatusText(p.Status)
	body, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("plugintest: encoding a problem: %v", err))
	}
	return &Result{Status: p.Status, Header: http.Header{"Content-Type": {ProblemContentType}}, Body: body}
}
