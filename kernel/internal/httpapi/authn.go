package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/identity"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/kernel/internal/token"
	"github.com/edulure/edulure/sdk"
)

func unauthorized(code, detail string) *problem.Problem {
	return problem.New(http.StatusUnauthorized, code, detail)
}

// authenticate resolves the request's credentials to a principal and
// checks the route's access level and permission (authorize).
func (s *Server) authenticate(r Route) echo.MiddlewareFunc {
	check := r.check()
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			setHeaders(c.Response().Header(), noStoreHeader)
			p, err := s.principal(c)
			if err != nil {
				if pr, ok := err.(*problem.Problem); ok && pr.Status == http.StatusUnauthorized {
					c.Response().Header().Set("WWW-Authenticate", `Bearer realm="edulure"`)
				}
				return err
			}
			c.Set(principalKey, p)
			if err := s.authorize(c.Request().Context(), p, check); err != nil {
				return err
			}
			return next(c)
		}
	}
}

// permissionDenied is the 403 for a principal without perm.
func permissionDenied(p *Principal, perm string) *problem.Problem {
	if p != nil && p.Kind == "apikey" {
		return problem.New(http.StatusForbidden, "permission-denied", "this API key lacks the permission "+perm+", or the person who created it no longer holds it")
	}
	return problem.New(http.StatusForbidden, "permission-denied", "you lack the permission "+perm)
}

func (s *Server) authzInput(p *Principal, action string) authz.Input {
	in := authz.Input{
		Subject: authz.Subject{Type: p.Kind, Operator: p.Operator, Permissions: p.Permissions},
		Roles:   p.Roles,
		Action:  action,
	}
	if p.Kind == "apikey" {
		in.Subject.ID = p.KeyID.String()
		in.Roles = p.CreatorRoles // the policy limits a key to what its creator holds
	} else {
		in.Subject.ID = p.userString()
	}
	if p.HasTenant() {
		in.Tenant = p.tenantString()
	}
	return in
}

func bearer(c echo.Context) (string, bool) {
	h := c.Request().Header.Get(echo.HeaderAuthorization)
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

func (s *Server) resolvePrincipal(ctx context.Context, c echo.Context) (*Principal, error) {
	raw, ok := bearer(c)
	if !ok {
		return nil, unauthorized("missing-credentials", "send an access token or API key as 'Authorization: Bearer <token>'")
	}
	if strings.HasPrefix(raw, identity.APIKeyPrefix) {
		k, err := identity.AuthenticateAPIKey(ctx, s.Pool, raw)
		if err != nil {
			return nil, err
		}
		// A key works only while its creator belongs to its institution,
		// and with no more than the creator holds there now.
		if k.CreatedBy == nil {
			return nil, unauthorized("api-key-creator-removed", "the API key's creator no longer has an account, so the key no longer works; an admin can create a new one")
		}
		roles, err := s.roles.get(ctx, k.TenantID, *k.CreatedBy)
		if errors.Is(err, sdk.ErrForbidden) {
			return nil, unauthorized("api-key-creator-removed", "the API key's creator is no longer a member of its institution, so the key no longer works; an admin can create a new one")
		}
		if err != nil {
			return nil, err
		}
		return &Principal{Kind: "apikey", KeyID: k.ID, TenantID: k.TenantID, Permissions: k.Permissions, CreatorID: *k.CreatedBy, CreatorRoles: roles}, nil
	}
	claims, err := s.Keyring.Verify(ctx, raw)
	if err != nil {
		return nil, tokenProblem(err)
	}
	p := &Principal{Kind: "user", Operator: claims.Operator, MFA: claims.MFA}
	p.UserID, _ = uuid.Parse(claims.Subject)
	p.SessionID, _ = uuid.Parse(claims.SessionID)
	p.userText = p.UserID.String()
	if s.revoked.has(p.SessionID) {
		return nil, unauthorized("session-revoked", "the session of this token has been revoked; log in again")
	}
	if claims.TenantID != "" {
		p.TenantID, _ = uuid.Parse(claims.TenantID)
		p.tenantText = p.TenantID.String()
		roles, err := s.roles.get(ctx, p.TenantID, p.UserID)
		if err != nil {
			return nil, err
		}
		p.Roles = roles
	}
	return p, nil
}

func tokenProblem(err error) *problem.Problem {
	switch {
	case errors.Is(err, token.ErrExpired):
		return unauthorized("token-expired", "the access token has expired; refresh it")
	case errors.Is(err, token.ErrRetiredKey):
		return unauthorized("token-key-retired", "the access token was signed by a retired key; refresh it or log in again")
	case errors.Is(err, token.ErrUnknownKey):
		return unauthorized("token-unknown-key", "the access token was not signed by this platform")
	case errors.Is(err, token.ErrSignature):
		return unauthorized("token-signature", "the access token's signature is not valid")
	case errors.Is(err, token.ErrMalformed):
		return unauthorized("token-malformed", "the access token is not a well-formed JWT")
	default:
		return unauthorized("token-invalid", err.Error())
	}
}

// roleCache keeps members' roles; entries are dropped when a membership
// changes on any replica (see listenChanges) and expire after 30 s anyway.
type roleCache struct {
	pool  *pgxpool.Pool
	cache *expirable.LRU[[2]uuid.UUID, []string]
}

func newRoleCache(pool *pgxpool.Pool) *roleCache {
	return &roleCache{pool: pool, cache: expirable.NewLRU[[2]uuid.UUID, []string](200_000, nil, 30*time.Second)}
}

func (r *roleCache) get(ctx context.Context, tenant, user uuid.UUID) ([]string, error) {
	if roles, ok := r.cache.Get([2]uuid.UUID{tenant, user}); ok {
		return roles, nil
	}
	roles, err := tenancy.MemberRoles(ctx, r.pool, tenant, user)
	if err != nil {
		return nil, err
	}
	r.cache.Add([2]uuid.UUID{tenant, user}, roles)
	return roles, nil
}

func (r *roleCache) drop(tenant, user uuid.UUID) { r.cache.Remove([2]uuid.UUID{tenant, user}) }
func (r *roleCache) purge()                      { r.cache.Purge() }

// revocations knows the sessions revoked within the last access-token
// lifetime, so that a revoked session's tokens stop working at once on this
// replica and within a second on others, without a query per request.
type revocations struct {
	pool  *pgxpool.Pool
	ttl   time.Duration
	mu    sync.RWMutex
	set   map[uuid.UUID]time.Time
	since time.Time
}

func newRevocations(pool *pgxpool.Pool, ttl time.Duration) *revocations {
	return &revocations{pool: pool, ttl: ttl, set: map[uuid.UUID]time.Time{}}
}

func (r *revocations) has(id uuid.UUID) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	_, ok := r.set[id]
	return ok
}

func (r *revocations) add(ids ...uuid.UUID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		r.set[id] = time.Now()
	}
}

func (r *revocations) refresh(ctx context.Context) error {
	r.mu.RLock()
	since := r.since
	r.mu.RUnlock()
	if since.IsZero() {
		since = time.Now().Add(-r.ttl - time.Minute)
	}
	ids, now, err := identity.RevokedSince(ctx, r.pool, since.Add(-2*time.Second))
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, id := range ids {
		if _, ok := r.set[id]; !ok {
			r.set[id] = now
		}
	}
	for id, at := range r.set {
		if now.Sub(at) > r.ttl+time.Minute {
			delete(r.set, id)
		}
	}
	r.since = now
	return nil
}

func (r *revocations) poll(ctx context.Context, log hclog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if err := r.refresh(ctx); err != nil && ctx.Err() == nil {
			log.Warn("refreshing session revocations", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
