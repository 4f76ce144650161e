package plugintest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// Timeout is the deadline the harness gives each request, as the kernel
// gives each forwarded request one.
const Timeout = 30 * time.Second

// Request is one request for DoRequest.
type Request struct {
	Principal sdk.Principal
	Method    string
	// Path is the request path, with a query string if any:
	// "/api/v1/leaderboard?limit=5".
	Path string
	// Body is nil, a []byte, json.RawMessage or string sent as is, or any
	// other value sent encoded as JSON.
	Body any
	// Header holds the headers the kernel would pass on.
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

// DoRequest does what the kernel does with a request for a plugin route:
//
//  1. It finds the route whose method and path template match (404 when no
//     template matches the path, 405 when none has the method).
//  2. Unless the route is Public, the caller must have credentials (401),
//     be acting in an institution (403) in which the plugin is enabled
//     (404, see SetEnabled) and hold the route's Permission (403), among
//     those Resolve gives it.
//  3. It forwards the request through sdk.Dispatch, the code path of a
//     served plugin, with the resolved principal, the path parameters, the
//     query, a deadline and the institution's configuration.
//  4. An error becomes the problem+json answer the kernel sends: invalid
//     422, bad_request 400, unauthorized 401, forbidden 403, not_found
//     404, conflict 409, gone 410, too_many_requests 429, unavailable 503,
//     and anything else (a panic included) 500.
//
// A request the harness cannot send (a body that does not encode) fails the test.
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
	requestID := r.RequestID
	if requestID == "" {
		requestID = newUUID()
	}
	fail := func(status int, code, detail string) *Result {
		return problemResult(&Problem{Status: status, Code: code, Detail: detail, Instance: path, RequestID: requestID, Source: "client"})
	}

	rt, params, allow := h.match(method, path)
	switch {
	case rt == nil && len(allow) > 0:
		res := fail(http.StatusMethodNotAllowed, "method-not-allowed", "method "+method+" is not allowed on "+path)
		res.Header.Set("Allow", strings.Join(allow, ", "))
		return res
	case rt == nil:
		return fail(http.StatusNotFound, "not-found", "no route "+method+" "+path)
	}

	p := h.Resolve(r.Principal)
	if !rt.Public {
		if p.Anonymous() {
			res := fail(http.StatusUnauthorized, "missing-credentials", "send an access token or API key as 'Authorization: Bearer <token>'")
			res.Header.Set("WWW-Authenticate", `Bearer realm="edulure"`)
			return res
		}
		if p.TenantID == "" {
			return fail(http.StatusForbidden, "tenant-required", "this route needs a token scoped to an institution: log in with a tenant or call POST /api/v1/auth/switch")
		}
	}
	config := json.RawMessage("{}")
	if p.TenantID != "" {
		var enabled bool
		config, enabled = h.tenantConfig(p.TenantID)
		if !enabled {
			return fail(http.StatusNotFound, "plugin-disabled", "plugin "+h.manifest.Name+" is not enabled for this institution")
		}
	}
	if !rt.Public && !p.Can(rt.Permission) {
		return fail(http.StatusForbidden, "permission-denied", "you lack the permission "+rt.Permission)
	}
	if r.Config != nil {
		config = r.Config
	}

	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	query, _ := url.ParseQuery(rawQuery) // like net/http: keep what parses
	in := &pluginv1.HTTPRequest{
		Route: rt.Key(), Method: method, Path: path, PathParams: params,
		Query: values(query), Headers: values(r.Header), Body: body,
		Principal: &pluginv1.Principal{
			Kind: p.Kind, UserId: p.UserID, ApiKeyId: p.APIKeyID, TenantId: p.TenantID,
			Roles: p.Roles, Permissions: p.Permissions, Operator: p.Operator,
		},
		RequestId: requestID, DeadlineUnixMs: deadline.UnixMilli(), TenantConfigJson: config,
	}
	out := sdk.Dispatch(ctx, h.logger, rt.handler, in, h.env.DB)
	if out.Error != nil {
		return errorResult(out.Error, path, requestID)
	}
	res := &Result{Status: int(out.Status), Header: http.Header{}, Body: out.Body}
	for k, v := range out.Headers {
		res.Header[http.CanonicalHeaderKey(k)] = v.Values
	}
	return res
}

// match finds the most specific route for method and path, or the methods
// the path allows.
func (h *Harness) match(method, path string) (*route, map[string]string, []string) {
	parts := wire.SplitPath(path)
	var best *route
	var bestParams map[string]string
	var allow []string
	for i := range h.routes {
		rt := &h.routes[i]
		params, ok := rt.path.Match(parts)
		if !ok {
			continue
		}
		if rt.Method != method {
			if !slices.Contains(allow, rt.Method) {
				allow = append(allow, rt.Method)
			}
			continue
		}
		if best == nil || rt.literals > best.literals {
			best, bestParams = rt, params
		}
	}
	if bestParams == nil {
		bestParams = map[string]string{}
	}
	slices.Sort(allow)
	return best, bestParams, allow
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

func values(in map[string][]string) map[string]*pluginv1.Values {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]*pluginv1.Values, len(in))
	for k, v := range in {
		out[k] = &pluginv1.Values{Values: slices.Clone(v)}
	}
	return out
}
