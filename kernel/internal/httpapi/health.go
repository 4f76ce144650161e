package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// HealthResponse reports liveness or readiness.
type HealthResponse struct {
	Status string            `json:"status"`
	Checks map[string]string `json:"checks,omitempty"`
}

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, HealthResponse{Status: "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	out := HealthResponse{Status: "ok", Checks: map[string]string{"database": "ok"}}
	// Plugins are reported, not required: one broken plugin must not take
	// the replica out of the load balancer for every other route.
	for _, st := range s.Plugins.Statuses() {
		out.Checks["plugin:"+st.Name] = string(st.State)
	}
	if err := s.Pool.Ping(ctx); err != nil {
		out.Status, out.Checks["database"] = "unavailable", err.Error()
		return c.JSON(http.StatusServiceUnavailable, out)
	}
	return c.JSON(http.StatusOK, out)
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
