package httpapi

import (
	"context"
	"net/http"

	"github.com/edulure/edulure/kernel/internal/problem"
)

// accessCheck is what a request needs of its principal once its
// credentials are valid: a kernel route's declaration, a plugin route's
// (TenantScoped with the route's permission) or a job's for a run on
// demand (TenantScoped for a per-institution job, Platform otherwise).
type accessCheck struct {
	Access     Access
	Permission string
	// PlatformPermission lets an operator whose token names no institution
	// through a TenantScoped check, with this permission instead.
	PlatformPermission string
	// What names the thing refused ("this route", "job courses/certify").
	What string
}

// check is the access check a kernel route declares.
func (r Route) check() accessCheck {
	return accessCheck{Access: r.Access, Permission: r.Permission, PlatformPermission: r.PlatformPermission, What: "this route"}
}

// authorize is the one access check of the API: the kernel's routes, the
// plugin proxy and the jobs route all ask it. The principal must be of the
// kind the access level names, and OPA must grant it the permission: in
// its institution for TenantScoped, as an operator for Platform.
func (s *Server) authorize(ctx context.Context, p *Principal, c accessCheck) error {
	if c.Access == Public {
		return nil
	}
	if p == nil {
		return unauthorized("missing-credentials", "send an access token or API key as 'Authorization: Bearer <token>'")
	}
	perm := c.Permission
	switch c.Access {
	case Authenticated:
		return nil
	case UserOnly:
		if p.Kind != "user" {
			return problem.New(http.StatusForbidden, "user-required", c.What+" is for people, not API keys")
		}
		return nil
	case TenantScoped:
		if !p.HasTenant() {
			if !p.Operator || c.PlatformPermission == "" {
				return problem.New(http.StatusForbidden, "tenant-required", c.What+" needs a token scoped to an institution: log in with a tenant or call POST /api/v1/auth/switch")
			}
			perm = c.PlatformPermission // an operator across institutions
		}
	case Platform:
		if !p.Operator {
			return problem.New(http.StatusForbidden, "operator-required", c.What+" is for platform operators")
		}
	}
	in := s.authzInput(p, perm)
	if c.Access == Platform {
		in.Tenant = "" // a platform permission is held on no institution
	}
	ok, err := s.allowed(ctx, in)
	if err != nil {
		return err
	}
	if !ok {
		return permissionDenied(p, perm)
	}
	return nil
}
