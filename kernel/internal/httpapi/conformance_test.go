package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/conformance"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// TestRequestContractConformance sends the same requests to the
// conformance plugin through a real kernel and through sdk/plugintest, and
// expects the same answers: the route matching, credentials and permission
// checks, the declared query parameters and the body schema (wire.Contract),
// the headers passed each way, the error kinds and the statuses. What a
// plugin's tests see is what its clients will see.
func TestRequestContractConformance(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: variant{name: "conf", version: "0.1.0", module: "kernel/internal/conformance/cmd"},
		limits: fmt.Sprintf("storage_object_bytes = %d", conformance.StorageObjectBytes)})
	b.undocumented = map[string]string{
		"GET /api/v1/conf/status/{code}": "answers the status its path names, to test how statuses pass through",
		"GET /api/v1/conf/stream/{kind}": "streams with the status its kind names (status-201, status-204), likewise",
	}
	inst := b.institution("conform")
	h := plugintest.New(t, conformance.New(), plugintest.WithStorageLimits(10<<30, conformance.StorageObjectBytes))
	tenant := plugintest.NewTenant()
	principals := map[string]sdk.Principal{
		"admin": plugintest.User(tenant, "admin"), "learner": plugintest.User(tenant, "learner"), "": plugintest.Anonymous(),
	}
	tokens := map[string]string{"admin": inst.admin, "learner": inst.learner, "": ""}

	for _, tc := range []struct {
		name, who, method, path, body string
		header                        http.Header
		// sameDetail: the detail is the plugin's or the contract's, so it is
		// the same words; the kernel's routing answers word 404/405 its own way.
		sameDetail bool
		status     int // when set, the status both must answer
	}{
		{name: "echo", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=1&limit=5&tag=a&tag=b&mode=a&undeclared=x",
			header: http.Header{"Accept-Language": {"fr"}, "If-Match": {`"e1"`}, "Cookie": {"c=1"}, "X-Forwarded-For": {"1.2.3.4"}}, sameDetail: true},
		{name: "path parameter escaped", who: "learner", method: "GET", path: "/api/v1/conf/echo/a%20b?must=1", sameDetail: true},
		{name: "path parameter with NUL", who: "learner", method: "GET", path: "/api/v1/conf/echo/a%00b?must=1", sameDetail: true},
		{name: "query required", who: "learner", method: "GET", path: "/api/v1/conf/echo/7", sameDetail: true},
		{name: "query not an integer", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=1&limit=ten", sameDetail: true},
		{name: "query out of range", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=1&limit=0", sameDetail: true},
		{name: "query repeated", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=1&limit=1&limit=2", sameDetail: true},
		{name: "query not in enum", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=1&mode=c", sameDetail: true},
		{name: "query item too long", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=1&tag=abcdef", sameDetail: true},
		{name: "query with NUL", who: "learner", method: "GET", path: "/api/v1/conf/echo/7?must=%00", sameDetail: true},
		{name: "public without a token", who: "", method: "GET", path: "/api/v1/conf/public", sameDetail: true},
		{name: "public with a token", who: "admin", method: "GET", path: "/api/v1/conf/public", sameDetail: true},
		{name: "no credentials", who: "", method: "GET", path: "/api/v1/conf/echo/7?must=1"},
		{name: "no permission", who: "learner", method: "POST", path: "/api/v1/conf/things", body: `{"name":"a"}`},
		{name: "no such route", who: "admin", method: "GET", path: "/api/v1/conf/nothing"},
		{name: "wrong method", who: "admin", method: "DELETE", path: "/api/v1/conf/things"},
		{name: "create", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":"lamp","count":2,"kind":"x"}`, sameDetail: true},
		{name: "create without a body", who: "admin", method: "POST", path: "/api/v1/conf/things", sameDetail: true},
		{name: "create not JSON", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":`, sameDetail: true},
		{name: "create trailing data", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":"a"} {}`, sameDetail: true},
		{name: "create not an object", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `[1]`, sameDetail: true},
		{name: "create unknown field", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":"a","colour":"red"}`, sameDetail: true},
		{name: "create many wrong fields", who: "admin", method: "POST", path: "/api/v1/conf/things",
			body: `{"name":"","count":-1,"kind":"z","owner":"nope","tags":["a","b","c"]}`, sameDetail: true},
		{name: "create missing field", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"count":1}`, sameDetail: true},
		{name: "create wrong type", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":5}`, sameDetail: true},
		{name: "create with NUL", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":"a\u0000"}`, sameDetail: true},
		{name: "create null count", who: "admin", method: "POST", path: "/api/v1/conf/things", body: `{"name":"a","count":null}`, sameDetail: true},
		{name: "error fields", who: "learner", method: "GET", path: "/api/v1/conf/errors/fields", sameDetail: true},
		{name: "error coded", who: "learner", method: "GET", path: "/api/v1/conf/errors/coded", sameDetail: true},
		{name: "error retry", who: "learner", method: "GET", path: "/api/v1/conf/errors/retry", sameDetail: true},
		{name: "error internal", who: "learner", method: "GET", path: "/api/v1/conf/errors/internal", sameDetail: true},
		{name: "error bad_request", who: "learner", method: "GET", path: "/api/v1/conf/errors/bad_request", sameDetail: true},
		{name: "error unauthorized", who: "learner", method: "GET", path: "/api/v1/conf/errors/unauthorized", sameDetail: true},
		{name: "error forbidden", who: "learner", method: "GET", path: "/api/v1/conf/errors/forbidden", sameDetail: true},
		{name: "error not_found", who: "learner", method: "GET", path: "/api/v1/conf/errors/not_found", sameDetail: true},
		{name: "error gone", who: "learner", method: "GET", path: "/api/v1/conf/errors/gone", sameDetail: true},
		{name: "error unavailable", who: "learner", method: "GET", path: "/api/v1/conf/errors/unavailable", sameDetail: true},
		{name: "status 204 drops the body", who: "learner", method: "GET", path: "/api/v1/conf/status/204", sameDetail: true},
		{name: "status 304 drops the body", who: "learner", method: "GET", path: "/api/v1/conf/status/304", sameDetail: true},
		{name: "status 299 keeps it", who: "learner", method: "GET", path: "/api/v1/conf/status/299", sameDetail: true},
		{name: "status 600 is a bad gateway", who: "learner", method: "GET", path: "/api/v1/conf/status/600", sameDetail: true},
		// Streamed answers (Route.Stream): the same checks first, then the
		// parts put together; errors before the first part as problems.
		{name: "stream echo", who: "learner", method: "GET", path: "/api/v1/conf/stream/echo?must=1&tag=a&undeclared=x",
			header: http.Header{"Last-Event-Id": {"41"}, "Accept-Language": {"fr"}}, sameDetail: true},
		{name: "stream query required", who: "learner", method: "GET", path: "/api/v1/conf/stream/echo", sameDetail: true},
		{name: "stream no credentials", who: "", method: "GET", path: "/api/v1/conf/stream/echo?must=1"},
		{name: "stream error coded", who: "learner", method: "GET", path: "/api/v1/conf/stream/error-coded?must=1", sameDetail: true},
		{name: "stream error retry", who: "learner", method: "GET", path: "/api/v1/conf/stream/error-retry?must=1", sameDetail: true},
		{name: "stream error internal", who: "learner", method: "GET", path: "/api/v1/conf/stream/error-internal?must=1", sameDetail: true},
		{name: "stream empty", who: "learner", method: "GET", path: "/api/v1/conf/stream/empty?must=1", sameDetail: true},
		{name: "stream status 201", who: "learner", method: "GET", path: "/api/v1/conf/stream/status-201?must=1", sameDetail: true},
		{name: "stream status 204 drops the body", who: "learner", method: "GET", path: "/api/v1/conf/stream/status-204?must=1", sameDetail: true},
		{name: "stream status 600 is a bad gateway", who: "learner", method: "GET", path: "/api/v1/conf/stream/status-600?must=1", sameDetail: true},
		// Object storage: the same blobstore code on both sides.
		{name: "store a file", who: "admin", method: "POST", path: "/api/v1/conf/files?key=notes/a.txt", body: `{"content":"hello"}`, sameDetail: true, status: 201},
		{name: "read it back", who: "learner", method: "GET", path: "/api/v1/conf/files?key=notes/a.txt", sameDetail: true, status: 200},
		{name: "store it once", who: "admin", method: "POST", path: "/api/v1/conf/files?key=notes/a.txt&once=true", body: `{"content":"again"}`, sameDetail: true, status: 409},
		{name: "read a missing file", who: "learner", method: "GET", path: "/api/v1/conf/files?key=notes/b.txt", sameDetail: true, status: 404},
		{name: "a key that leaves its scope", who: "learner", method: "GET", path: "/api/v1/conf/files?key=../notes/a.txt", sameDetail: true, status: 422},
		{name: "a key of the kernel", who: "admin", method: "POST", path: "/api/v1/conf/files?key=kernel/x", body: `{"content":"x"}`, sameDetail: true, status: 422},
		{name: "a file over the limit", who: "admin", method: "POST", path: "/api/v1/conf/files?key=big", body: `{"content":"eleven char"}`, sameDetail: true, status: 413},
		{name: "an undeclared capability", who: "admin", method: "POST", path: "/api/v1/conf/files/platform?key=a", body: `{"content":"a"}`, sameDetail: true, status: 403},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			var headers []string
			for k, v := range tc.header {
				headers = append(headers, k, v[0])
			}
			b.allow5xx = true
			k := b.do(tc.method, tc.path, tokens[tc.who], body, headers...)
			p := h.DoRequest(plugintest.Request{Principal: principals[tc.who], Method: tc.method, Path: tc.path, Body: body, Header: withJSON(tc.header, body)})

			require.Equal(t, k.Status, p.Status, "kernel: %s\nplugintest: %s", k.Raw, p.Body)
			if tc.status != 0 {
				require.Equal(t, tc.status, k.Status, "%s", k.Raw)
			}
			for _, name := range []string{"Content-Type", "Etag", "Location", "Retry-After", "X-Internal", "Set-Cookie"} {
				require.Equal(t, k.Header.Get(name), p.Header.Get(name), "header %s; kernel: %s\nplugintest: %s", name, k.Raw, p.Body)
			}
			if k.Status == http.StatusOK || k.Status == 299 {
				require.Equal(t, k.Header.Get("Cache-Control"), p.Header.Get("Cache-Control"))
			}
			require.Equal(t, normalise(t, k.Raw, tc.sameDetail), normalise(t, p.Body, tc.sameDetail))
		})
	}
}

func withJSON(h http.Header, body any) http.Header {
	out := http.Header{}
	for k, v := range h {
		out[k] = v
	}
	if body != nil {
		out.Set("Content-Type", "application/json")
	}
	return out
}

// normalise drops what differs by nature between the two: request IDs and
// instances, and the kernel's own wording where it answers before any
// plugin code (routing, credentials).
func normalise(t *testing.T, raw []byte, sameDetail bool) string {
	t.Helper()
	var v map[string]any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	delete(v, "request_id")
	delete(v, "instance")
	if !sameDetail {
		delete(v, "detail")
	}
	if h, ok := v["headers"].(map[string]any); ok { // the client's own headers differ (Go's client adds some)
		for k := range h {
			if !strings.EqualFold(k, "Accept-Language") && !strings.EqualFold(k, "If-Match") && !strings.EqualFold(k, "Cookie") && !strings.EqualFold(k, "Last-Event-Id") {
				delete(h, k)
			}
		}
	}
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}
