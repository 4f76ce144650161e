package httpapi

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/privacy"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
)

// The personal data lifecycle (docs/api.md, "Personal data"): exports,
// erasures and offboarding. The work runs in the background
// (kernel/internal/privacy); these handlers ask for it, show it and audit
// who asked.

// actor names the principal in a request's record.
func actor(p *Principal) string {
	kind, id := p.Actor()
	return kind + ":" + id
}

// person is the caller as a person: the /me routes are for people, not
// API keys.
func person(c echo.Context) (*Principal, error) {
	p := principalOf(c)
	if p.Kind != "user" {
		return nil, problem.New(http.StatusForbidden, "user-required", "this route is for people, not API keys")
	}
	return p, nil
}

func (s *Server) personalDataCatalogue(c echo.Context) error {
	return c.JSON(http.StatusOK, s.Privacy.Catalogue())
}

// Exports.

func (s *Server) requestExport(c echo.Context, user uuid.UUID) error {
	p := principalOf(c)
	ctx := c.Request().Context()
	var out privacy.Export
	err := s.inTx(c, func(t *txc) error {
		if _, err := tenancy.MemberRoles(ctx, t, p.TenantID, user); err != nil {
			if err := s.formerMember(c, t, user); err != nil {
				return err
			}
		}
		var err error
		if out, err = s.Privacy.RequestExport(ctx, t, p.TenantID, user, actor(p)); err != nil {
			return err
		}
		return t.audit(p.TenantID, "privacy.export.requested", "export:"+out.ID.String(), map[string]any{"export_id": out.ID.String(), "user_id": user.String()})
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/tenant/data-exports/"+out.ID.String())
	return c.JSON(http.StatusAccepted, out)
}

// formerMember is nil when the person, not a member of the caller's
// institution, was one (privacy.FormerMember), and a 404 otherwise: the
// same answer as for nobody, so that an institution learns nothing of
// the people of others.
func (s *Server) formerMember(c echo.Context, t *txc, user uuid.UUID) error {
	ctx := c.Request().Context()
	if _, err := identity.GetUser(ctx, t, user); err != nil {
		return sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
	}
	known, err := privacy.FormerMember(ctx, t, principalOf(c).TenantID, user)
	if err != nil {
		return err
	}
	if !known {
		return sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
	}
	return nil
}

func (s *Server) requestMyExport(c echo.Context) error {
	p, err := person(c)
	if err != nil {
		return err
	}
	return s.requestExport(c, p.UserID)
}

func (s *Server) requestMemberExport(c echo.Context) error {
	id, err := pathUUID(c, "user_id")
	if err != nil {
		return err
	}
	return s.requestExport(c, id)
}

// ExportsQuery is what GET /api/v1/tenant/data-exports reads.
type ExportsQuery struct {
	UserID string `query:"user_id" format:"uuid" doc:"Only the exports of this person."`
	PageQuery
}

// ErasuresQuery is what the institution's list of erasure requests reads.
type ErasuresQuery struct {
	State  string `query:"state" enum:"scheduled,cancelled,running,retrying,failed,completed" doc:"Only requests in this state."`
	UserID string `query:"user_id" format:"uuid" doc:"Only the requests about this person."`
	PageQuery
}

// MyErasuresQuery is what the list of one's own erasure requests reads.
type MyErasuresQuery struct {
	State string `query:"state" enum:"scheduled,cancelled,running,retrying,failed,completed" doc:"Only requests in this state."`
	PageQuery
}

func (s *Server) listExports(c echo.Context, user *uuid.UUID) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterUUID(pg)
	if err != nil {
		return err
	}
	out, err := s.Privacy.ListExports(c.Request().Context(), s.Pool, principalOf(c).TenantID, user, before, pg.Limit+1)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(out, pg.Limit, func(e privacy.Export) []string { return key(e.ID.String()) }))
}

func (s *Server) listMyExports(c echo.Context) error {
	p, err := person(c)
	if err != nil {
		return err
	}
	return s.listExports(c, &p.UserID)
}

func (s *Server) listTenantExports(c echo.Context) error {
	var user *uuid.UUID
	if v := c.QueryParam("user_id"); v != "" {
		id, err := uuid.Parse(v)
		if err != nil {
			return sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a user ID"})
		}
		user = &id
	}
	return s.listExports(c, user)
}

// export is one of the institution's exports, of the caller only when mine.
func (s *Server) export(c echo.Context, mine bool) (privacy.Export, error) {
	id, err := pathUUID(c, "export_id")
	if err != nil {
		return privacy.Export{}, err
	}
	p := principalOf(c)
	if mine {
		if _, err := person(c); err != nil {
			return privacy.Export{}, err
		}
	}
	e, err := s.Privacy.GetExport(c.Request().Context(), s.Pool, p.TenantID, id)
	if err == nil && (e.UserID == nil || mine && *e.UserID != p.UserID) {
		err = sdk.Errorf(sdk.ErrNotFound, "no such export")
	}
	return e, err
}

func (s *Server) getMyExport(c echo.Context) error     { return s.showExport(c, true) }
func (s *Server) getTenantExport(c echo.Context) error { return s.showExport(c, false) }

func (s *Server) showExport(c echo.Context, mine bool) error {
	e, err := s.export(c, mine)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, e)
}

func (s *Server) downloadMyExport(c echo.Context) error     { return s.exportLink(c, true) }
func (s *Server) downloadTenantExport(c echo.Context) error { return s.exportLink(c, false) }

// exportLink signs a short-lived URL of an export's archive, and audits it.
func (s *Server) exportLink(c echo.Context, mine bool) error {
	e, err := s.export(c, mine)
	if err != nil {
		return err
	}
	p := principalOf(c)
	var out privacy.DownloadLink
	err = s.inTx(c, func(t *txc) error {
		if out, err = s.Privacy.Link(c.Request().Context(), t, p.TenantID, e.ID); err != nil {
			return err
		}
		return t.audit(p.TenantID, "privacy.export.link_issued", "export:"+e.ID.String(),
			map[string]any{"export_id": e.ID.String(), "user_id": e.UserID.String(), "expires_at": out.ExpiresAt})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// serveExport answers a signed URL of an export's archive: the signature is
// the credential; the download is audited.
func (s *Server) serveExport(c echo.Context, key string) error {
	err := s.Privacy.ServeDownload(c.Response(), c.Request(), key, c.RealIP(), c.Response().Header().Get(echo.HeaderXRequestID))
	if errors.Is(err, blobstore.ErrAfterHeaders) {
		s.requestLogger(c).Warn("export download cut short", "error", err)
		return nil
	}
	return err
}

// Erasures.

func (s *Server) requestErasure(c echo.Context, user uuid.UUID, self bool) error {
	p := principalOf(c)
	ctx := c.Request().Context()
	var out privacy.Request
	err := s.inTx(c, func(t *txc) error {
		member := true
		roles, err := tenancy.MemberRoles(ctx, t, p.TenantID, user)
		if err != nil {
			// A former member: their data in the institution's plugins is
			// still erased; their account is not anonymised.
			if self {
				return sdk.Errorf(sdk.ErrNotFound, "no such member in this institution")
			}
			if err := s.formerMember(c, t, user); err != nil {
				return err
			}
			member = false
		}
		if member && slices.Contains(roles, authz.RoleAdmin) {
			if err := s.keepOneAdmin(c, t, p.TenantID, user); err != nil {
				return err
			}
		}
		tn, err := tenancy.GetTenant(ctx, t, p.TenantID)
		if err != nil {
			return err
		}
		out, err = s.Privacy.RequestErasure(ctx, t, privacy.ErasureSpec{
			TenantID: p.TenantID, UserID: user, RequestedBy: actor(p), Self: self, WasMember: member,
			CoolOff: time.Duration(tn.ErasureCoolOffHours) * time.Hour,
		})
		if err != nil {
			return err
		}
		return t.audit(p.TenantID, "privacy.erasure.requested", "erasure:"+out.ID.String(),
			map[string]any{"erasure_id": out.ID.String(), "self": self, "not_before": out.NotBefore})
	})
	if err != nil {
		return err
	}
	loc := "/api/v1/tenant/erasures/"
	if self {
		loc = "/api/v1/me/erasures/"
	}
	c.Response().Header().Set("Location", loc+out.ID.String())
	return c.JSON(http.StatusAccepted, out)
}

func (s *Server) requestMyErasure(c echo.Context) error {
	p, err := person(c)
	if err != nil {
		return err
	}
	return s.requestErasure(c, p.UserID, true)
}

func (s *Server) requestMemberErasure(c echo.Context) error {
	id, err := pathUUID(c, "user_id")
	if err != nil {
		return err
	}
	return s.requestErasure(c, id, false)
}

func (s *Server) listErasures(c echo.Context, user *uuid.UUID) error {
	pg, err := pageRequest(c)
	if err != nil {
		return err
	}
	before, err := afterUUID(pg)
	if err != nil {
		return err
	}
	state := c.QueryParam("state")
	switch state {
	case "", privacy.StateScheduled, privacy.StateCancelled, privacy.StateRunning, privacy.StateRetrying, privacy.StateFailed, privacy.StateCompleted:
	default:
		return sdk.Invalid(sdk.FieldError{Field: "state", Message: "must be scheduled, cancelled, running, retrying, failed or completed"})
	}
	if v := c.QueryParam("user_id"); v != "" && user == nil {
		id, err := uuid.Parse(v)
		if err != nil {
			return sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a user ID"})
		}
		user = &id
	}
	out, err := s.Privacy.List(c.Request().Context(), s.Pool, principalOf(c).TenantID,
		privacy.ListFilter{Kind: privacy.KindErasure, UserID: user, State: state, Before: before, Limit: pg.Limit + 1})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(out, pg.Limit, func(r privacy.Request) []string { return key(r.ID.String()) }))
}

func (s *Server) listMyErasures(c echo.Context) error {
	p, err := person(c)
	if err != nil {
		return err
	}
	return s.listErasures(c, &p.UserID)
}

func (s *Server) listTenantErasures(c echo.Context) error { return s.listErasures(c, nil) }

// erasure is one of the institution's erasure requests, of the caller only
// when mine.
func (s *Server) erasure(c echo.Context, mine bool) (privacy.Request, error) {
	id, err := pathUUID(c, "erasure_id")
	if err != nil {
		return privacy.Request{}, err
	}
	p := principalOf(c)
	if mine {
		if _, err := person(c); err != nil {
			return privacy.Request{}, err
		}
	}
	r, err := s.Privacy.Get(c.Request().Context(), s.Pool, p.TenantID, id)
	if err == nil && (r.Kind != privacy.KindErasure || mine && (r.UserID == nil || *r.UserID != p.UserID)) {
		err = sdk.Errorf(sdk.ErrNotFound, "no such erasure request")
	}
	return r, err
}

func (s *Server) getMyErasure(c echo.Context) error     { return s.showErasure(c, true) }
func (s *Server) getTenantErasure(c echo.Context) error { return s.showErasure(c, false) }

func (s *Server) showErasure(c echo.Context, mine bool) error {
	r, err := s.erasure(c, mine)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, r)
}

func (s *Server) cancelMyErasure(c echo.Context) error { return s.changeErasure(c, true, "cancelled") }
func (s *Server) cancelTenantErasure(c echo.Context) error {
	return s.changeErasure(c, false, "cancelled")
}
func (s *Server) resumeErasure(c echo.Context) error { return s.changeErasure(c, false, "resumed") }

// changeErasure cancels a request during its cool-off, or resumes a failed
// one, and audits it.
func (s *Server) changeErasure(c echo.Context, mine bool, what string) error {
	r, err := s.erasure(c, mine)
	if err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var out privacy.Request
	err = s.inTx(c, func(t *txc) error {
		var err error
		if what == "cancelled" {
			out, err = s.Privacy.Cancel(ctx, t, p.TenantID, r.ID, actor(p))
		} else {
			out, err = s.Privacy.Resume(ctx, t, p.TenantID, r.ID, actor(p))
		}
		if err != nil {
			return err
		}
		return t.audit(p.TenantID, "privacy.erasure."+what, "erasure:"+r.ID.String(), map[string]any{"erasure_id": r.ID.String(), "round": out.Round})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// Offboarding.

// OffboardingRequest confirms an institution's offboarding: its slug,
// typed out.
type OffboardingRequest struct {
	Confirm string `json:"confirm"`
}

func (s *Server) previewOffboarding(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	out, err := s.Privacy.PreviewOffboarding(c.Request().Context(), id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) offboard(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	var req OffboardingRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalOf(c)
	ctx := c.Request().Context()
	var out privacy.Request
	err = s.inTx(c, func(t *txc) error {
		tn, err := tenancy.GetTenant(ctx, t, id)
		if err != nil {
			return err
		}
		if req.Confirm != tn.Slug {
			return sdk.Invalid(sdk.FieldError{Field: "confirm", Message: "must be the institution's slug, " + tn.Slug + ": offboarding erases it for good (preview it first with POST .../offboarding/preview)"})
		}
		if out, err = s.Privacy.RequestOffboarding(ctx, t, id, actor(p)); err != nil {
			return err
		}
		t.changed("tenant:" + id.String())
		return t.audit(uuid.Nil, "privacy.offboarding.requested", "offboarding:"+out.ID.String(),
			map[string]any{"offboarding_id": out.ID.String(), "tenant_id": id.String(), "slug": tn.Slug})
	})
	if err != nil {
		return err
	}
	c.Response().Header().Set("Location", "/api/v1/tenants/"+id.String()+"/offboarding")
	return c.JSON(http.StatusAccepted, out)
}

func (s *Server) getOffboarding(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	out, err := s.Privacy.Offboarding(c.Request().Context(), s.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) resumeOffboarding(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	r, err := s.Privacy.Offboarding(ctx, s.Pool, id)
	if err != nil {
		return err
	}
	var out privacy.Request
	err = s.inTx(c, func(t *txc) error {
		if out, err = s.Privacy.Resume(ctx, t, id, r.ID, actor(principalOf(c))); err != nil {
			return err
		}
		return t.audit(uuid.Nil, "privacy.offboarding.resumed", "offboarding:"+r.ID.String(),
			map[string]any{"offboarding_id": r.ID.String(), "tenant_id": id.String(), "round": out.Round})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getOffboardingExport(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	out, err := s.Privacy.OffboardingExport(c.Request().Context(), s.Pool, id)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) downloadOffboardingExport(c echo.Context) error {
	id, err := pathUUID(c, "tenant_id")
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	e, err := s.Privacy.OffboardingExport(ctx, s.Pool, id)
	if err != nil {
		return err
	}
	var out privacy.DownloadLink
	err = s.inTx(c, func(t *txc) error {
		if out, err = s.Privacy.Link(ctx, t, id, e.ID); err != nil {
			return err
		}
		return t.audit(uuid.Nil, "privacy.offboarding.link_issued", "export:"+e.ID.String(),
			map[string]any{"export_id": e.ID.String(), "tenant_id": id.String(), "expires_at": out.ExpiresAt})
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}
