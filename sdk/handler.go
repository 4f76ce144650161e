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
	"time"

	"github.com/jackc/pgx/v5"
)

// Handler serves one route.
//
// Since: v1.0
type Handler interface {
	ServeAPI(ctx context.Context, req *Request) (*Response, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) (*Response, error)

// ServeAPI calls f.
func (f HandlerFunc) ServeAPI(ctx context.Context, req *Request) (*Response, error) {
	return f(ctx, req)
}

// Request is one request the kernel has authenticated, authorised and
// forwarded. The context passed with it carries the kernel's deadline.
//
// Since: v1.0
type Request struct {
	Route     string            // "GET /api/v1/leaderboard/{user_id}"
	Method    string            // as sent
	Path      string            // as sent
	Params    map[string]string // path parameters by name
	Query     url.Values
	Header    http.Header // only the headers the kernel passes on
	Body      []byte
	Principal Principal
	RequestID string
	Deadline  time.Time
	// Config is the plugin's configuration for the principal's institution
	// (a JSON object; "{}" when none is set).
	Config json.RawMessage

	db *DB
}

// Param returns a path parameter.
func (r *Request) Param(name string) string { return r.Params[name] }

// Decode reads the JSON body into v, refusing unknown fields, trailing data
// and an empty body with an ErrBadRequest that says what was wrong.
func (r *Request) Decode(v any) error {
	if len(bytes.TrimSpace(r.Body)) == 0 {
		return Errorf(ErrBadRequest, "the request needs a JSON body")
	}
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syn):
			return Errorf(ErrBadRequest, "the body is not valid JSON (at byte %d)", syn.Offset)
		case errors.As(err, &typ):
			return Invalid(FieldError{Field: typ.Field, Message: fmt.Sprintf("must be %s, not %s", typ.Type, typ.Value)})
		case errors.Is(err, io.ErrUnexpectedEOF):
			return Errorf(ErrBadRequest, "the body ends in the middle of a JSON value")
		default:
			return Errorf(ErrBadRequest, "the body cannot be read: %s", err.Error())
		}
	}
	if dec.More() {
		return Errorf(ErrBadRequest, "the body has data after its JSON value")
	}
	return nil
}

// Tx runs fn in a transaction scoped to the principal's institution: row-level
// security shows and accepts only that institution's rows. On a request
// without an institution the transaction sees no tenant-scoped rows.
func (r *Request) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	if r.db == nil {
		return Errorf(ErrUnavailable, "the plugin has no database")
	}
	return r.db.InTenant(ctx, r.Principal.TenantID, fn)
}

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
