package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// HealthResponse reports liveness or readiness. Checks are shown to
// platform operators only (see readyz).
type HealthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, HealthResponse{Status: "ok"})
}

// readyz answers whether this replica can serve: 200 "ok" when the database
// answers, else 503 "unavailable". Anyone (a load balancer) gets only the
// status; the checks (database error, each plugin's state) name the
// installed plugins and their failures, so they are shown only to a caller
// whose token may read plugin health (platform.plugin.read).
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	out := HealthResponse{Status: "ok", Checks: map[string]string{"database": "ok"}}
	// Plugins are reported, not required: one broken plugin must not take
	// the replica out of the load balancer for every other route.
	for _, st := range s.Plugins.Statuses() {
		out.Checks["plugin:"+st.Name] = string(st.State)
	}
	code := http.StatusOK
	if err := s.Pool.Ping(ctx); err != nil {
		out.Status, out.Checks["database"] = "unavailable", err.Error()
		code = http.StatusServiceUnavailable
	}
	if !s.mayReadHealth(c) {
		out.Checks = nil
	}
	setHeaders(c.Response().Header(), noStoreHeader)
	return c.JSON(code, out)
}

// mayReadHealth reports whether the request carries a token allowed to see
// the readiness checks. A missing or bad token is no error here: readiness
// probes send none, and they get the status.
func (s *Server) mayReadHealth(c echo.Context) bool {
	if _, sent := bearer(c); !sent {
		return false
	}
	p, err := s.principal(c)
	if err != nil || !p.Operator {
		return false
	}
	ok, err := s.allowed(c.Request().Context(), s.authzInput(p, "platform.plugin.read"))
	return err == nil && ok
}

func (s *Server) jwks(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=300")
	return c.JSONBlob(http.StatusOK, s.Keyring.JWKS())
}

func (s *Server) openAPI(c echo.Context) error {
	doc, err := s.openAPIDocument()
	if err != nil {
		return err
	}
	return c.JSONBlob(http.StatusOK, doc)
}
