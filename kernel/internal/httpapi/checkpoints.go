package httpapi

import (
	"net/http"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/auditcheck"
	"github.com/edulure/edulure/sdk"
)

func (s *Server) auditCheck() (*auditcheck.Service, error) {
	if s.AuditCheck == nil {
		return nil, sdk.Errorf(sdk.ErrUnavailable, "audit checkpoints are not set up in this kernel")
	}
	return s.AuditCheck, nil
}

func (s *Server) listCheckpoints(c echo.Context, tenant uuid.UUID) error {
	ac, err := s.auditCheck()
	if err != nil {
		return err
	}
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterInt(pg)
	if err != nil {
		return err
	}
	cps, err := ac.List(c.Request().Context(), auditcheck.Chain(tenant), before, pg.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(cps, pg.Limit, func(cp auditcheck.Checkpoint) []string { return intKey(cp.Seq) }))
}

func (s *Server) verifyCheckpoints(c echo.Context, tenant uuid.UUID) error {
	ac, err := s.auditCheck()
	if err != nil {
		return err
	}
	res, err := ac.Check(c.Request().Context(), auditcheck.Chain(tenant), false)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, res)
}

func (s *Server) tenantCheckpoints(c echo.Context) error {
	return s.listCheckpoints(c, principalOf(c).TenantID)
}

func (s *Server) verifyTenantCheckpoints(c echo.Context) error {
	return s.verifyCheckpoints(c, principalOf(c).TenantID)
}

func (s *Server) platformCheckpoints(c echo.Context) error { return s.listCheckpoints(c, uuid.Nil) }

func (s *Server) verifyPlatformCheckpoints(c echo.Context) error {
	return s.verifyCheckpoints(c, uuid.Nil)
}

// runCheckpoints verifies every chain and signs what grew, now.
func (s *Server) runCheckpoints(c echo.Context) error {
	ac, err := s.auditCheck()
	if err != nil {
		return err
	}
	res, err := ac.Run(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, whole(res))
}
