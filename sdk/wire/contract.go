package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/schema"
)

// The headers the kernel passes to a plugin, and those it passes back, in
// canonical form (http.CanonicalHeaderKey: "Etag"). Credentials and cookies
// never leave the kernel. Stripe-Signature (Since: v1.2) is the signature
// of a Stripe webhook, which the commerce plugin's public webhook route
// verifies itself: a signature over the body, not a credential of the
// kernel's.
var (
	ForwardedHeaders = []string{"Accept", "Accept-Language", "Content-Type", "If-Match", "If-None-Match", "Idempotency-Key", "User-Agent", "Last-Event-Id", "Stripe-Signature"}
	ReturnedHeaders  = []string{"Content-Type", "Content-Language", "Content-Disposition", "Cache-Control", "Etag", "Last-Modified", "Location", "Link", "Retry-After"}
)

// Refusal is the kernel's answer to a request a route's contract does not
// accept, before the plugin sees it.
type Refusal struct {
	Kind   Kind
	Detail string
	Fields []schema.Violation
}

func (r *Refusal) Error() string { return r.Kind.Name + ": " + r.Detail }

func refuse(kind string, detail string, fields ...schema.Violation) *Refusal {
	return &Refusal{Kind: KindNamed(kind), Detail: detail, Fields: fields}
}

// Contract is what the kernel checks of a request for one route before
// forwarding it: the declared query parameters (only those are forwarded),
// path parameters, and the JSON body against the route's request schema.
// The kernel and sdk/plugintest compile and apply the same Contract.
type Contract struct {
	query        []queryParam
	body         *jsonschema.Schema
	bodyRequired bool
}

type queryParam struct {
	name     string
	required bool
	array    bool
	typ      string // of the value, or of the items of an array
	schema   *jsonschema.Schema
}

// CompileContract compiles a route's contract. components are the
// manifest's component schemas (JSON, may be empty).
func CompileContract(r *pluginv1.Route, components []byte) (*Contract, error) {
	c := &Contract{}
	if len(r.QueryParams) > 0 {
		for _, q := range r.QueryParams {
			p, err := compileParam(r, q)
			if err != nil {
				return nil, err
			}
			c.query = append(c.query, p)
		}
	} else {
		for _, name := range r.Query { // v1.1: names only, strings
			c.query = append(c.query, queryParam{name: name, typ: "string"})
		}
	}
	if len(r.RequestSchemaJson) > 0 {
		js, err := schema.JSONSchema(r.RequestSchemaJson, components, true)
		if err != nil {
			return nil, fmt.Errorf("request schema: %w", err)
		}
		if c.body, err = schema.Compile("request "+r.Method+" "+r.Path, js); err != nil {
			return nil, err
		}
		c.bodyRequired = BodyRequired(r.RequestSchemaJson, components)
	}
	return c, nil
}

func compileParam(r *pluginv1.Route, q *pluginv1.QueryParam) (queryParam, error) {
	p := queryParam{name: q.Name, required: q.Required}
	var s struct {
		Type  string `json:"type"`
		Items *struct {
			Type string `json:"type"`
		} `json:"items"`
	}
	if err := json.Unmarshal(q.SchemaJson, &s); err != nil {
		return p, fmt.Errorf("query parameter %q: schema is not a JSON object", q.Name)
	}
	p.typ = s.Type
	if s.Type == "array" {
		if s.Items == nil {
			return p, fmt.Errorf("query parameter %q: an array needs items", q.Name)
		}
		p.array, p.typ = true, s.Items.Type
	}
	switch p.typ {
	case "string", "integer", "number", "boolean":
	default:
		return p, fmt.Errorf("query parameter %q: must be a string, integer, number or boolean (or a list of them), not %q", q.Name, p.typ)
	}
	js, err := schema.JSONSchema(q.SchemaJson, nil, false)
	if err != nil {
		return p, fmt.Errorf("query parameter %q: %w", q.Name, err)
	}
	p.schema, err = schema.Compile("query "+r.Method+" "+r.Path+" "+q.Name, js)
	return p, err
}

// BodyRequired reports whether a request schema (or the component it
// refers to) requires a property: then an empty body is refused, else an
// empty body is a request without one.
func BodyRequired(raw, components []byte) bool {
	var s struct {
		Ref      string   `json:"$ref"`
		Required []string `json:"required"`
	}
	if json.Unmarshal(raw, &s) != nil {
		return false
	}
	if strings.HasPrefix(s.Ref, schema.ComponentRef) {
		var comps map[string]json.RawMessage
		if json.Unmarshal(components, &comps) != nil {
			return false
		}
		return BodyRequired(comps[strings.TrimPrefix(s.Ref, schema.ComponentRef)], nil)
	}
	return len(s.Required) > 0
}

// BodyRequired reports whether the route refuses an empty body: its
// request schema requires a property.
func (c *Contract) BodyRequired() bool { return c.bodyRequired }

// Check checks a request's path parameters, query and body, and returns the
// query to forward: the declared parameters only. The error is a *Refusal.
func (c *Contract) Check(params map[string]string, query url.Values, body []byte) (map[string]*pluginv1.Values, error) {
	var bad []schema.Violation
	for name, v := range params {
		if strings.IndexByte(v, 0) >= 0 {
			bad = append(bad, schema.Violation{Field: name, Message: "must not contain NUL characters (\\u0000)"})
		}
	}
	var out map[string]*pluginv1.Values
	for _, p := range c.query {
		vals := query[p.name]
		if len(vals) == 0 {
			if p.required {
				bad = append(bad, schema.Violation{Field: p.name, Message: "is required"})
			}
			continue
		}
		if !p.array && len(vals) > 1 {
			bad = append(bad, schema.Violation{Field: p.name, Message: "must be given once"})
			continue
		}
		if v, msg := p.check(vals); msg != "" {
			bad = append(bad, schema.Violation{Field: p.name, Message: msg})
			continue
		} else if vs := schema.Validate(p.schema, v, p.name); len(vs) > 0 {
			bad = append(bad, vs...)
			continue
		}
		if out == nil {
			out = map[string]*pluginv1.Values{}
		}
		out[p.name] = &pluginv1.Values{Values: slices.Clone(vals)}
	}
	if len(bad) > 0 {
		return nil, refuse("invalid", invalidDetail(bad), bad...)
	}
	if c.body == nil {
		return out, nil
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if c.bodyRequired {
			return nil, refuse("bad_request", "the request needs a JSON body")
		}
		return out, nil
	}
	// JSON is UTF-8 (RFC 8259 §8.1); decoding other bytes would quietly
	// turn them into U+FFFD, and the plugin would store what the client
	// did not send.
	if !utf8.Valid(body) {
		return nil, refuse("bad_request", "the body is not UTF-8")
	}
	doc, err := schema.Decode(body)
	if err != nil {
		return nil, refuse("bad_request", jsonError(err))
	}
	if vs := schema.Validate(c.body, doc, ""); len(vs) > 0 {
		return nil, refuse("invalid", invalidDetail(vs), vs...)
	}
	return out, nil
}

// check converts a parameter's text to the JSON value its schema checks,
// or says why it cannot.
func (p queryParam) check(vals []string) (any, string) {
	conv := func(s string) (any, string) {
		switch p.typ {
		case "integer":
			if _, err := strconv.ParseInt(s, 10, 64); err != nil {
				return nil, "must be an integer"
			}
			return json.Number(s), ""
		case "number":
			if _, err := strconv.ParseFloat(s, 64); err != nil {
				return nil, "must be a number"
			}
			return json.Number(s), ""
		case "boolean":
			switch s {
			case "true":
				return true, ""
			case "false":
				return false, ""
			}
			return nil, "must be true or false"
		}
		return s, ""
	}
	if !p.array {
		return conv(vals[0])
	}
	out := make([]any, 0, len(vals))
	for _, s := range vals {
		v, msg := conv(s)
		if msg != "" {
			return nil, msg
		}
		out = append(out, v)
	}
	return out, ""
}

func invalidDetail(vs []schema.Violation) string {
	if len(vs) == 1 {
		return vs[0].Field + ": " + vs[0].Message
	}
	return "the request has invalid fields"
}

// jsonError says in words where a body stops being JSON.
func jsonError(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("the body is not valid JSON (at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "the body ends in the middle of a JSON value"
	}
	return "the body is not valid JSON: " + err.Error()
}

// FilterHeaders keeps the headers in allow (canonical names), in the wire
// form.
func FilterHeaders(h http.Header, allow []string) map[string]*pluginv1.Values {
	var out map[string]*pluginv1.Values
	for k, v := range h {
		if !slices.Contains(allow, http.CanonicalHeaderKey(k)) || len(v) == 0 {
			continue
		}
		if out == nil {
			out = map[string]*pluginv1.Values{}
		}
		out[http.CanonicalHeaderKey(k)] = &pluginv1.Values{Values: slices.Clone(v)}
	}
	return out
}

// ResponseHeaders are the headers of a plugin's answer that reach the
// client: those in ReturnedHeaders, compared in canonical form (a Go
// plugin's Header.Set("ETag") sends "Etag", another SDK may send "ETag"),
// and a Content-Type of application/octet-stream when a body has none (no
// Content-Type when no body goes out). They replace the kernel's defaults
// of the same name (Cache-Control: no-store).
func ResponseHeaders(resp *pluginv1.HTTPResponse) http.Header {
	out := returned(resp.Headers)
	switch {
	case len(ResponseBody(resp)) == 0:
		out.Del("Content-Type") // no body goes out (204, 304, or none given)
	case out.Get("Content-Type") == "":
		out.Set("Content-Type", "application/octet-stream")
	}
	return out
}

// ResponseBody is the body the client gets: none for 204 and 304.
func ResponseBody(resp *pluginv1.HTTPResponse) []byte {
	if Bodyless(resp.Status) {
		return nil
	}
	return resp.Body
}

// ValidStatus reports whether a plugin answered with a status the kernel
// passes on; any other is a 502.
func ValidStatus(status int32) bool { return status >= 200 && status <= 599 }

// returned keeps the headers in ReturnedHeaders.
func returned(headers map[string]*pluginv1.Values) http.Header {
	out := http.Header{}
	for name, v := range headers {
		if slices.Contains(ReturnedHeaders, http.CanonicalHeaderKey(name)) {
			for _, x := range v.Values {
				out.Add(name, x)
			}
		}
	}
	return out
}
