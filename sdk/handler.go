package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// Handler serves one route: a plain function or method value,
// Handler: p.createCourse.
//
// Since: v1.0 (a func type since v1.2; an interface before)
type Handler func(ctx context.Context, req *Request) (*Response, error)

// HandlerFunc is Handler, for code written against v1.1, where Handler was
// an interface and sdk.HandlerFunc(f) adapted a function to it.
//
// Deprecated: write Handler: f.
type HandlerFunc = Handler

// Request is one request the kernel has authenticated, authorised, checked
// against the route's declared query and body schemas, and forwarded. The
// context passed with it carries the kernel's deadline.
//
// Since: v1.0
type Request struct {
	Route  string            // "GET /api/v1/leaderboard/{user_id}"
	Method string            // as sent
	Path   string            // as sent
	Params map[string]string // path parameters by name
	// Query holds the declared query parameters only (see Route.Query).
	Query     url.Values
	Header    http.Header // only the headers the kernel passes on
	Body      []byte
	Principal Principal
	RequestID string
	Deadline  time.Time
	// Config is the institution's own configuration of the plugin, as
	// stored (a JSON object; "{}" when none is set). Config[T] gives the
	// setting in force, over the operator's and the defaults.
	Config json.RawMessage

	rt *runtime
}

var _ Scope = (*Request)(nil)

// Param returns a path parameter.
func (r *Request) Param(name string) string { return r.Params[name] }

// Tenant is the principal's institution ("" when the credentials name none).
func (r *Request) Tenant() string { return r.Principal.TenantID }

// Decode reads the JSON body into v. The kernel has checked the body
// against the route's Request schema; Decode still refuses what cannot be
// stored or was not declared: malformed JSON and trailing data (400), and
// unknown fields, values of the wrong type and text with NUL characters
// (422 naming the field). An empty body is a 400, unless the route's
// Request schema requires no field: then v is left as it is (its zero
// value, the request's defaults).
func (r *Request) Decode(v any) error {
	if len(bytes.TrimSpace(r.Body)) == 0 {
		if r.rt != nil && r.rt.optionalBody[r.Route] {
			return nil
		}
		return Errorf(ErrBadRequest, "the request needs a JSON body")
	}
	return decodeJSON(r.Body, v)
}

func decodeJSON(body []byte, v any) error {
	if bytes.Contains(body, []byte(`\u0000`)) {
		if f := nulField(body); f != "" {
			return Invalid(FieldError{Field: f, Message: "must not contain NUL characters (\\u0000)"})
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Errorf(ErrBadRequest, "the body is not valid JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			field := typ.Field
			if field == "" {
				field = "body"
			}
			return Invalid(FieldError{Field: field, Message: fmt.Sprintf("must be %s, not %s", jsonKind(typ.Type.Kind().String()), typ.Value)})
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Errorf(ErrBadRequest, "the body ends in the middle of a JSON value")
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return Invalid(FieldError{Field: name, Message: "is not a known field"})
		default:
			var se *Error
			if errors.As(err, &se) { // from an Optional or another field's UnmarshalJSON
				return se
			}
			return Errorf(ErrBadRequest, "the body cannot be read: %s", err.Error())
		}
	}
	if dec.More() {
		return Errorf(ErrBadRequest, "the body has data after its JSON value")
	}
	return nil
}

// nulField names the first string of body that holds a NUL character.
func nulField(body []byte) string {
	var doc any
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	var walk func(v any, path string) string
	walk = func(v any, path string) string {
		switch x := v.(type) {
		case string:
			if strings.IndexByte(x, 0) >= 0 {
				if path == "" {
					return "body"
				}
				return path
			}
		case map[string]any:
			for k, e := range x {
				p := k
				if path != "" {
					p = path + "." + k
				}
				if strings.IndexByte(k, 0) >= 0 {
					return p
				}
				if f := walk(e, p); f != "" {
					return f
				}
			}
		case []any:
			for i, e := range x {
				if f := walk(e, fmt.Sprintf("%s.%d", path, i)); f != "" {
					return strings.TrimPrefix(f, ".")
				}
			}
		}
		return ""
	}
	return walk(doc, "")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	return goKind
}

// Tx runs fn in a transaction scoped to the principal's institution: row-level
// security shows and accepts only that institution's rows. On a request
// without an institution the transaction sees no tenant-scoped rows.
func (r *Request) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return r.rt.tx(ctx, r.Principal.TenantID, fn)
}

// Publish writes an event to the plugin's outbox inside tx, for the
// principal's institution. It is delivered if and only if tx commits. The
// type must be one the manifest publishes, and data must match its schema.
func (r *Request) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	return r.rt.publish(ctx, tx, Outgoing{
		Type: eventType, TenantID: r.Principal.TenantID, Actor: r.Principal.Actor(), RequestID: r.RequestID, Data: data,
	})
}

// Host is the kernel's services, for calls the plugin makes on behalf of
// this work (Membership, Authorize, Audit).
func (r *Request) Host() Host { return r.rt.hostOrNone() }

func (r *Request) config(context.Context) (json.RawMessage, error) { return r.Config, nil }
func (r *Request) runtime() *runtime                               { return r.rt }

// Response is a handler's answer.
//
// Since: v1.0
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON answers with status and v encoded as JSON.
func JSON(status int, v any) (*Response, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding response: %w", err)
	}
	return &Response{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// NoContent answers 204 with no body.
func NoContent() (*Response, error) { return &Response{Status: http.StatusNoContent}, nil }
