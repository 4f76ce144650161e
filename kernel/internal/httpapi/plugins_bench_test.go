package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/supervisor"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// BenchmarkPluginRequest compares, in one run:
//
//   - echo-in-process: the baseline, an Echo handler answering 204 in the
//     same process, through Echo's ServeHTTP;
//   - grpc-crossing: one forward of a no-op route to the plugin process
//     (gRPC over AutoMTLS, concurrency limit, deadline), nothing else;
//   - kernel-full: the whole kernel path of the same route through the
//     kernel's ServeHTTP: request ID, logging and metrics, token
//     verification, enablement, OPA decision, forward, response.
//
// The closing note reports kernel-full and grpc-crossing as ratios to the
// baseline; make bench (issue 6) will write them to bench/results.json.
func BenchmarkPluginRequest(b *testing.B) {
	tb, _ := withPlugins(b, pluginBlock{variant: probe})
	inst := tb.institution("bench")
	ctx := context.Background()

	b.Run("echo-in-process", func(b *testing.B) {
		e := echo.New()
		e.GET("/api/v1/probe/noop", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
		b.ReportAllocs()
		for b.Loop() {
			req := httptest.NewRequest("GET", "/api/v1/probe/noop", nil)
			w := httptest.NewRecorder()
			e.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatal(w.Code)
			}
		}
	})

	b.Run("grpc-crossing", func(b *testing.B) {
		target, _, found := tb.kernel.Plugins.Lookup("GET", "/api/v1/probe/noop")
		require.Equal(b, supervisor.Found, found)
		req := &pluginv1.HTTPRequest{Route: target.Route.Key, Method: "GET", Path: "/api/v1/probe/noop",
			Principal: &pluginv1.Principal{Kind: "user", UserId: inst.learnerID, TenantId: inst.id, Roles: []string{"learner"}}}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := tb.kernel.Plugins.Forward(ctx, target, req)
			if err != nil || resp.Status != http.StatusNoContent {
				b.Fatal(err, resp)
			}
		}
	})

	b.Run("kernel-full", func(b *testing.B) {
		h := tb.kernel.API.Handler()
		b.ReportAllocs()
		for b.Loop() {
			// A fresh request each time: middleware wraps its body.
			req := httptest.NewRequest("GET", "/api/v1/probe/noop", nil)
			req.Header.Set("Authorization", "Bearer "+inst.learner)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusNoContent {
				b.Fatal(w.Code, w.Body.String())
			}
		}
	})
}
