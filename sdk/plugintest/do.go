package plugintest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/wire"
)

// The kernel's defaults for forwarded requests.
const (
	// Timeout is the deadline of each request (plugins.hcl request_timeout).
	Timeout = 10 * time.Second
	// BodyLimit is the largest request body; a larger one is a 413.
	BodyLimit = 1 << 20
)

// Request is one request for DoRequest.
type Request struct {
	Principal sdk.Principal
	// Method is GET, POST, PUT, PATCH or DELETE (case does not matter).
	Method string
	// Path is the request path, with a query string if any:
	// "/api/v1/leaderboard?limit=5".
	Path string
	// Body is nil, a []byte, json.RawMessage or string sent as is, or any
	// other value sent encoded as JSON.
	Body any
	// Header holds request headers; as with the kernel, the plugin sees
	// only Accept, Accept-Language, Content-Type, If-Match, If-None-Match,
	// Idempotency-Key, User-Agent, Last-Event-ID and Stripe-Signature.
	Header http.Header
	// RequestID is the kernel's request ID; a random one when empty.
	RequestID string
	// Config replaces the institution's configuration (SetTenantConfig)
	// for this request.
	Config json.RawMessage
}

// Do sends a request to the plugin as principal p and returns the answer a
// client of the kernel would get. See DoRequest.
func (h *Harness) Do(p sdk.Principal, method, path string, body any) *Result {
	h.t.Helper()
	return h.DoRequest(Request{Principal: p, Method: method, Path: path, Body: body})
}

// DoRequest does what the kernel does with a request for a plugin route,
// in the kernel's order:
//
//  1. It finds the route whose method and path template match: 404 when no
//     template matches the path, 405 when none with this method does.
//  2. A route that is not Public needs credentials (401). A caller in an
//     institution gets 404 where the plugin is not enabled (SetEnabled);
//     one in no institution gets 403 unless the route is Public. A route
//     that is not Public then needs its Permission (403).
//  3. It checks the request against the route's contract (wire.Contract,
//     which the kernel applies too): the declared query parameters (only
//     those are forwarded) and the body against the Request schema, with a
//     400 or a 422 naming each wrong field.
//  4. It forwards the request through the code path of a served plugin,
//     with the principal as Resolve gives it, the path parameters, the
//     query, the allowed headers, a deadline (Timeout) and the
//     institution's configuration.
//  5. A handler's error becomes the kernel's problem+json answer: invalid
//     422, bad_request 400, unauthorized 401, forbidden 403, not_found
//     404, conflict 409, gone 410, too_many_requests 429, unavailable 503;
//     anything else, a panic included, is a 500 "plugin-error" that keeps
//     the details in the plugin's log (the test log here).
//
// A request the harness cannot send (a body that does not encode) fails the
// test, and so does a success answer whose JSON body does not match the
// route's Response schema.
func (h *Harness) DoRequest(r Request) *Result {
	h.t.Helper()
	method := strings.ToUpper(r.Method)
	path, rawQuery, _ := strings.Cut(r.Path, "?")
	if !strings.HasPrefix(path, "/") {
		h.t.Fatalf("plugintest: path %q must start with /", r.Path)
	}
	body, err := encodeBody(r.Body)
	if err != nil {
		h.t.Fatalf("plugintest: encoding the request body: %v", err)
	}
	for _, id := range []string{r.Principal.TenantID, r.Principal.UserID, r.Principal.APIKeyID} {
		if id != "" && !isUUID(id) {
			h.t.Fatalf("plugintest: principal ID %q is not a UUID, as the kernel's always are: use NewTenant", id)
		}
	}
	requestID := r.RequestID
	if requestID == "" {
		requestID = newUUID()
	}
	fail := func(status int, code, detail string) *Result {
		return problemResult(&Problem{Status: status, Code: code, Detail: detail, Instance: path, RequestID: requestID, Source: "client"})
	}

	rt, params, found := h.match(method, path)
	switch found {
	case noRoute:
		return fail(http.StatusNotFound, "not-found", "no route "+method+" "+path)
	case wrongMethod:
		return fail(http.StatusMethodNotAllowed, "method-not-allowed", "method "+method+" is not allowed on "+path)
	}
	res := h.forward(r, rt, params, method, path, rawQuery, body, requestID)
	if res.Header.Get("Cache-Control") == "" {
		res.Header.Set("Cache-Control", "no-store") // the kernel's default for plugin routes
	}
	return res
}

func (h *Harness) forward(r Request, rt *wire.CheckedRoute, params map[string]string, method, path, rawQuery string, body []byte, requestID string) *Result {
	in, refused := h.prepare(r, rt, params, method, path, rawQuery, body, requestID)
	if refused != nil {
		return refused
	}
	if rt.Stream {
		return h.collect(in, path, requestID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	in.DeadlineUnixMs = deadline.UnixMilli()
	out := h.rt.HandleHTTP(ctx, in)
	if out.Error != nil {
		return h.errorResult(out.Error, path, requestID)
	}
	if !wire.ValidStatus(out.Status) {
		return h.invalidStatus(out.Status, path, requestID)
	}
	res := &Result{Status: int(out.Status), Header: wire.ResponseHeaders(out), Body: wire.ResponseBody(out)}
	h.checkResponse(rt, res)
	return res
}

func (h *Harness) invalidStatus(status int32, path, requestID string) *Result {
	return problemResult(&Problem{
		Status: http.StatusBadGateway, Code: "plugin-error", Instance: path, RequestID: requestID, Source: "plugin",
		Detail: fmt.Sprintf("plugin %q answered with the invalid status %d", h.manifest.Name, status),
	})
}

// prepare does the kernel's checks of a request, in its order, and makes
// the request to forward (without its deadline), or the answer refusing
// it.
func (h *Harness) prepare(r Request, rt *wire.CheckedRoute, params map[string]string, method, path, rawQuery string, body []byte, requestID string) (*pluginv1.HTTPRequest, *Result) {
	fail := func(status int, code, detail string) *Result {
		return problemResult(&Problem{Status: status, Code: code, Detail: detail, Instance: path, RequestID: requestID, Source: "client"})
	}
	p := h.Resolve(r.Principal)
	if !rt.Public && p.Anonymous() {
		res := fail(http.StatusUnauthorized, "missing-credentials", "send an access token or API key as 'Authorization: Bearer <token>'")
		res.Header.Set("WWW-Authenticate", `Bearer realm="edulure"`)
		return nil, res
	}
	var config json.RawMessage
	if p.TenantID != "" {
		var enabled bool
		if config, enabled = h.tenantConfig(p.TenantID); !enabled {
			return nil, fail(http.StatusNotFound, "plugin-not-enabled", fmt.Sprintf("the %s plugin is not enabled for this institution", h.manifest.Name))
		}
	} else if !rt.Public {
		return nil, fail(http.StatusForbidden, "tenant-required", "this route needs a token scoped to an institution: log in with a tenant or call POST /api/v1/auth/switch")
	}
	if !rt.Public && !h.allowed(r.Principal, p, rt.Permission) {
		return nil, fail(http.StatusForbidden, "permission-denied", "you lack the permission "+rt.Permission)
	}
	if len(body) > BodyLimit {
		return nil, fail(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("request body is larger than the limit of %d bytes", BodyLimit))
	}
	if r.Config != nil {
		config = r.Config
	}

	query, _ := url.ParseQuery(rawQuery) // like net/http: keep what parses
	forwarded, err := rt.Contract.Check(params, query, body)
	if err != nil {
		return nil, refusalResult(err.(*wire.Refusal), path, requestID)
	}
	in := &pluginv1.HTTPRequest{
		Route: rt.Key, Method: method, Path: path, PathParams: params,
		Query: forwarded, Headers: wire.FilterHeaders(r.Header, wire.ForwardedHeaders), Body: body,
		Principal: &pluginv1.Principal{
			Kind: string(p.Kind), UserId: p.UserID, ApiKeyId: p.APIKeyID, TenantId: p.TenantID,
			Roles: p.Roles, Permissions: p.Permissions, Operator: p.Operator,
		},
		RequestId: requestID, TenantConfigJson: config,
	}
	return in, nil
}

// checkResponse fails the test when a success answer's JSON body does not
// match the route's Response schema: what /api/openapi.json promises
// clients (a list that is null where the schema says a list, a field the
// type declares but the handler left out).
func (h *Harness) checkResponse(rt *wire.CheckedRoute, res *Result) {
	s := h.response[rt.Key]
	if s == nil || res.Status >= 300 || len(res.Body) == 0 || !strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		return
	}
	doc, err := schema.Decode(res.Body)
	if err != nil {
		h.t.Errorf("plugintest: %s answered %d with a body that is not JSON: %v", rt.Key, res.Status, err)
		return
	}
	if vs := schema.Validate(s, doc, ""); len(vs) > 0 {
		h.t.Errorf("plugintest: %s answered %d with a body that does not match its Response schema (what /api/openapi.json promises): %s\nbody: %s",
			rt.Key, res.Status, violationText(vs), res.Body)
	}
}

// allowed is the kernel's decision on a route's permission: the plugin's own
// permissions as Resolve grants them, and a permission of the kernel or of
// another plugin only if the test gave it to the principal explicitly.
func (h *Harness) allowed(given, resolved sdk.Principal, permission string) bool {
	for _, p := range h.manifest.Permissions {
		if p.Name == permission {
			return resolved.Can(permission)
		}
	}
	return given.Can(permission)
}

const (
	noRoute = iota
	foundRoute
	wrongMethod
)

// match finds the route for method and path. The kernel refuses plugins
// with overlapping routes, so at most one matches.
func (h *Harness) match(method, path string) (*wire.CheckedRoute, map[string]string, int) {
	parts := wire.SplitPath(path)
	outcome := noRoute
	for _, rt := range h.routes {
		params, ok := rt.Path.Match(parts)
		switch {
		case ok && rt.Method == method:
			if params == nil {
				params = map[string]string{}
			}
			return rt, params, foundRoute
		case ok:
			outcome = wrongMethod
		}
	}
	return nil, nil, outcome
}

func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	case json.RawMessage:
		return b, nil
	case string:
		return []byte(b), nil
	default:
		return json.Marshal(b)
	}
}
