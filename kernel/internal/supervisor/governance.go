package supervisor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/authz"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// Signer signs payloads for plugins with the kernel's keyring (the Host
// service Sign; token.Keyring.SignPayload).
type Signer interface {
	SignPayload(plugin, purpose string, payload []byte) (kid, jws string, err error)
}

// privileged refuses a governance call unless the plugin's manifest
// declares the capability (which the kernel loaded only because the
// operator allowed it in plugins.hcl).
func (h *hostServer) privileged(c string) error {
	if !slices.Contains(h.Service.Capabilities, c) {
		return status.Errorf(codes.PermissionDenied, "plugin %s does not declare the capability %q (the operator allows it in plugins.hcl)", h.plugin, c)
	}
	return nil
}

// grpcError is err as a gRPC status: sdk errors by kind, the rest
// UNAVAILABLE with their message.
func grpcError(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Unavailable
	switch {
	case errors.Is(err, sdk.ErrInvalid), errors.Is(err, sdk.ErrBadRequest):
		code = codes.InvalidArgument
	case errors.Is(err, sdk.ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, sdk.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, sdk.ErrConflict):
		code = codes.FailedPrecondition
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	}
	var se *sdk.Error
	if errors.As(err, &se) {
		return status.Error(code, se.Detail)
	}
	return status.Error(code, err.Error())
}

func (h *hostServer) ListRetentionClasses(ctx context.Context, req *pluginv1.ListRetentionClassesRequest) (*pluginv1.ListRetentionClassesResponse, error) {
	if err := h.privileged(wire.CapRetention); err != nil {
		return nil, err
	}
	tenant, err := uuid.Parse(req.TenantId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is not a UUID")
	}
	classes, err := h.s.RetentionClasses(ctx, tenant)
	if err != nil {
		return nil, grpcError(err)
	}
	return &pluginv1.ListRetentionClassesResponse{Classes: classes}, nil
}

func (h *hostServer) ApplyRetention(ctx context.Context, req *pluginv1.HostApplyRetentionRequest) (*pluginv1.RetentionResult, error) {
	if err := h.privileged(wire.CapRetention); err != nil {
		return nil, err
	}
	if req.Request == nil {
		return nil, status.Error(codes.InvalidArgument, "request is required")
	}
	res, err := h.s.ApplyRetention(ctx, req.Plugin, req.Request)
	if err != nil {
		return nil, grpcError(err)
	}
	return res, nil
}

func (h *hostServer) ListGrants(ctx context.Context, req *pluginv1.ListGrantsRequest) (*pluginv1.ListGrantsResponse, error) {
	if err := h.privileged(wire.CapGrants); err != nil {
		return nil, err
	}
	tenant, err := uuid.Parse(req.TenantId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is not a UUID")
	}
	grants, err := h.s.Grants(ctx, tenant)
	if err != nil {
		return nil, grpcError(err)
	}
	out := &pluginv1.ListGrantsResponse{}
	for _, g := range grants {
		out.Grants = append(out.Grants, sdk.EncodeGrant(g))
	}
	return out, nil
}

func (h *hostServer) RevokeGrant(ctx context.Context, req *pluginv1.RevokeGrantRequest) (*pluginv1.RevokeGrantResponse, error) {
	if err := h.privileged(wire.CapGrants); err != nil {
		return nil, err
	}
	tenant, err := uuid.Parse(req.TenantId)
	if err != nil {
		return nil, status.Error(codes.InvalidArgument, "tenant_id is not a UUID")
	}
	if len(req.Reason) > 1000 || strings.ContainsRune(req.Reason, 0) {
		return nil, status.Error(codes.InvalidArgument, "reason: at most 1000 characters, without NUL")
	}
	actor, err := h.s.resolvePrincipal(ctx, req.Principal, tenant)
	if err != nil {
		return nil, grpcError(err)
	}
	err = h.s.RevokeGrant(ctx, actor, tenant, sdk.GrantRef{Kind: req.Kind, ID: req.Id}, RevokeOptions{Via: h.plugin, Reason: req.Reason, RequestID: req.RequestId})
	if err != nil {
		return nil, grpcError(err)
	}
	return &pluginv1.RevokeGrantResponse{}, nil
}

func (h *hostServer) Sign(ctx context.Context, req *pluginv1.SignRequest) (*pluginv1.SignResponse, error) {
	if err := h.privileged(wire.CapSign); err != nil {
		return nil, err
	}
	if err := wire.CheckSignRequest(h.plugin, req.Purpose, req.Payload); err != nil {
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	if h.s.signer == nil {
		return nil, status.Error(codes.Unavailable, "this kernel has no signing keyring")
	}
	kid, jws, err := h.s.signer.SignPayload(h.plugin, req.Purpose, req.Payload)
	if err != nil {
		return nil, status.Errorf(codes.Unavailable, "signing: %v", err)
	}
	return &pluginv1.SignResponse{KeyId: kid, Algorithm: "EdDSA", Jws: jws}, nil
}

// RetentionClasses lists the retention classes of every loaded plugin
// enabled for tenant, by plugin and class name.
func (s *Supervisor) RetentionClasses(ctx context.Context, tenant uuid.UUID) ([]*pluginv1.RetentionClassInfo, error) {
	loaded := s.Loaded()
	sort.Slice(loaded, func(i, j int) bool { return loaded[i].Name < loaded[j].Name })
	out := []*pluginv1.RetentionClassInfo{}
	for _, l := range loaded {
		if len(l.Manifest.Retention) == 0 {
			continue
		}
		st, err := s.Enablement.Get(ctx, tenant, l.Name)
		if err != nil {
			return nil, fmt.Errorf("reading whether plugin %s is enabled: %w", l.Name, err)
		}
		if !st.Enabled {
			continue
		}
		for _, c := range l.Manifest.Retention {
			out = append(out, &pluginv1.RetentionClassInfo{Plugin: l.Name, Name: c.Name, Description: c.Description, Actions: c.Actions, HoldKinds: wire.HoldKinds(c)})
		}
	}
	return out, nil
}

// ApplyRetention asks plugin, which must be loaded and enabled for the
// request's tenant, to apply retention to one of its classes. The request
// is checked against the class first; the plugin's error is returned.
func (s *Supervisor) ApplyRetention(ctx context.Context, plugin string, req *pluginv1.RetentionRequest) (*pluginv1.RetentionResult, error) {
	tenant, err := uuid.Parse(req.TenantId)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalid, "tenant_id is not a UUID")
	}
	var class *pluginv1.RetentionClass
	found := false
	for _, l := range s.Loaded() {
		if l.Name != plugin {
			continue
		}
		found = true
		for _, c := range l.Manifest.Retention {
			if c.Name == req.Class {
				class = c
			}
		}
	}
	switch {
	case !found:
		return nil, sdk.Errorf(sdk.ErrNotFound, "no plugin %q is loaded", plugin)
	case class == nil:
		return nil, sdk.Errorf(sdk.ErrNotFound, "plugin %s has no retention class %q", plugin, req.Class)
	}
	if err := wire.CheckRetentionRequest(class, req); err != nil {
		return nil, sdk.Errorf(sdk.ErrInvalid, "%v", err)
	}
	st, err := s.Enablement.Get(ctx, tenant, plugin)
	if err != nil {
		return nil, fmt.Errorf("reading whether plugin %s is enabled: %w", plugin, err)
	}
	if !st.Enabled {
		return nil, sdk.Errorf(sdk.ErrNotFound, "plugin %s is not enabled for the institution", plugin)
	}
	inst, err := s.running(plugin)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrUnavailable, "%v", err)
	}
	defer inst.inflight.Done()
	if dl, ok := ctx.Deadline(); ok {
		req.DeadlineUnixMs = dl.UnixMilli()
	}
	ctx, end := s.traceCall(ctx, plugin, "ApplyRetention", attribute.Bool("edulure.dry_run", req.DryRun))
	res, err := inst.rpc.ApplyRetention(ctx, req)
	end(err)
	if err != nil {
		st, _ := status.FromError(err)
		return nil, status.Errorf(st.Code(), "plugin %s, retention class %s: %s", plugin, req.Class, st.Message())
	}
	res.Class = req.Class
	return res, nil
}

// resolvePrincipal is a plugin's principal as the kernel knows it: a
// member (their current roles) or an API key of tenant (its permissions,
// as far as its creator still holds them). Anyone else is refused.
func (s *Supervisor) resolvePrincipal(ctx context.Context, p *pluginv1.Principal, tenant uuid.UUID) (authz.Input, error) {
	refuse := sdk.Errorf(sdk.ErrForbidden, "the acting principal is not a member or an API key of the institution")
	if p == nil {
		return authz.Input{}, sdk.Errorf(sdk.ErrInvalid, "principal is required")
	}
	in := authz.Input{Tenant: tenant.String()}
	switch p.Kind {
	case "user":
		user, err := uuid.Parse(p.UserId)
		if err != nil {
			return in, refuse
		}
		roles, err := tenancy.MemberRoles(ctx, s.pool, tenant, user)
		if errors.Is(err, sdk.ErrForbidden) {
			return in, refuse
		}
		if err != nil {
			return in, err
		}
		in.Subject, in.Roles = authz.Subject{Type: "user", ID: user.String()}, roles
	case "apikey":
		id, err := uuid.Parse(p.ApiKeyId)
		if err != nil {
			return in, refuse
		}
		var perms []string
		var creator *uuid.UUID
		err = s.pool.QueryRow(ctx, `SELECT permissions, created_by FROM kernel.api_keys
			WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())`,
			id, tenant).Scan(&perms, &creator)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && creator == nil {
			return in, refuse
		}
		if err != nil {
			return in, err
		}
		roles, err := tenancy.MemberRoles(ctx, s.pool, tenant, *creator)
		if errors.Is(err, sdk.ErrForbidden) {
			return in, refuse
		}
		if err != nil {
			return in, err
		}
		in.Subject, in.Roles = authz.Subject{Type: "apikey", ID: id.String(), Permissions: perms}, roles
	default:
		return in, refuse
	}
	return in, nil
}

// Grants lists an institution's grants: each member (membership) and each
// role they hold (role), with the permissions it gives; the custom roles
// (an orphan when nobody holds one); the API keys not revoked (an orphan
// when its creator is no longer a member, or gone).
func (s *Supervisor) Grants(ctx context.Context, tenant uuid.UUID) ([]sdk.Grant, error) {
	var out []sdk.Grant
	rolePerms := map[string][]string{}
	perms := func(role string) ([]string, error) {
		if p, ok := rolePerms[role]; ok {
			return p, nil
		}
		p, err := s.authz.Granted(ctx, authz.Input{Subject: authz.Subject{Type: "user"}, Roles: []string{role}, Tenant: tenant.String()})
		if err != nil {
			return nil, fmt.Errorf("reading the permissions of role %s: %w", role, err)
		}
		if p == nil {
			p = []string{}
		}
		rolePerms[role] = p
		return p, nil
	}
	held := map[string]int{}
	rows, err := s.pool.Query(ctx, `SELECT user_id, roles, created_at FROM kernel.memberships WHERE tenant_id = $1 ORDER BY user_id`, tenant)
	if err != nil {
		return nil, err
	}
	type member struct {
		user    uuid.UUID
		roles   []string
		created time.Time
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (member, error) {
		var m member
		return m, r.Scan(&m.user, &m.roles, &m.created)
	})
	if err != nil {
		return nil, err
	}
	for _, m := range members {
		var all []string
		for _, role := range m.roles {
			held[role]++
			p, err := perms(role)
			if err != nil {
				return nil, err
			}
			all = append(all, p...)
			out = append(out, sdk.Grant{Kind: sdk.GrantRole, ID: m.user.String() + "/" + role, UserID: m.user.String(), Role: role, Permissions: p, CreatedAt: m.created})
		}
		slices.Sort(all)
		out = append(out, sdk.Grant{Kind: sdk.GrantMembership, ID: m.user.String(), UserID: m.user.String(), Roles: m.roles, Permissions: slices.Compact(all), CreatedAt: m.created})
	}
	stored, err := tenancy.StoredRoles(ctx, s.pool, tenant)
	if err != nil {
		return nil, err
	}
	for _, r := range stored {
		if authz.IsBuiltinRole(r.Name) {
			continue
		}
		g := sdk.Grant{Kind: sdk.GrantCustomRole, ID: r.Name, Role: r.Name, Name: r.Description, Permissions: r.Permissions}
		if g.Permissions == nil {
			g.Permissions = []string{}
		}
		if r.UpdatedAt != nil {
			g.CreatedAt = *r.UpdatedAt
		}
		if held[r.Name] == 0 {
			g.Orphan, g.OrphanReason = true, "no member holds the role"
		}
		out = append(out, g)
	}
	rows, err = s.pool.Query(ctx, `SELECT k.id, k.name, k.permissions, k.created_by, k.created_at, k.expires_at,
			k.created_by IS NOT NULL AND EXISTS (SELECT 1 FROM kernel.memberships m WHERE m.tenant_id = k.tenant_id AND m.user_id = k.created_by)
		FROM kernel.api_keys k
		WHERE k.tenant_id = $1 AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now())
		ORDER BY k.created_at, k.id`, tenant)
	if err != nil {
		return nil, err
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sdk.Grant, error) {
		var id uuid.UUID
		var creator *uuid.UUID
		var member bool
		g := sdk.Grant{Kind: sdk.GrantAPIKey}
		if err := r.Scan(&id, &g.Name, &g.Permissions, &creator, &g.CreatedAt, &g.ExpiresAt, &member); err != nil {
			return g, err
		}
		g.ID = id.String()
		if g.Permissions == nil {
			g.Permissions = []string{}
		}
		switch {
		case creator == nil:
			g.Orphan, g.OrphanReason = true, "its creator's account is gone"
		case !member:
			g.UserID = creator.String()
			g.Orphan, g.OrphanReason = true, "its creator is no longer a member"
		default:
			g.UserID = creator.String()
		}
		return g, nil
	})
	if err != nil {
		return nil, err
	}
	return append(out, keys...), nil
}

// RevokeOptions say who revokes, through what, and why.
type RevokeOptions struct {
	Via       string // the plugin that asked ("" for the kernel's API)
	Reason    string
	RequestID string
	IP        string
}

// revokePermission is the permission of the kernel's own route that does
// what revoking a grant of each kind does.
var revokePermission = map[string]string{
	sdk.GrantMembership: "tenancy.member.remove",
	sdk.GrantRole:       "tenancy.member.update",
	sdk.GrantCustomRole: "tenancy.role.manage",
	sdk.GrantAPIKey:     "identity.apikey.revoke",
}

// RevokeGrant revokes a grant of tenant on behalf of actor, who must hold
// the permission of the kernel's route for it and every permission the
// grant gives (nobody takes away what they could not give), in one
// transaction with its audit entry. The institution keeps an admin.
func (s *Supervisor) RevokeGrant(ctx context.Context, actor authz.Input, tenant uuid.UUID, ref sdk.GrantRef, o RevokeOptions) error {
	need, ok := revokePermission[ref.Kind]
	if !ok {
		return sdk.Errorf(sdk.ErrInvalid, "grant kind %q: one of membership, role, custom_role, api_key", ref.Kind)
	}
	if len(ref.ID) > 200 || strings.ContainsRune(ref.ID, 0) {
		return sdk.Errorf(sdk.ErrInvalid, "grant ID: at most 200 characters, without NUL")
	}
	heldPerms, err := s.authz.Granted(ctx, actor)
	if err != nil {
		return fmt.Errorf("reading the actor's permissions: %w", err)
	}
	if !slices.Contains(heldPerms, need) {
		return sdk.Errorf(sdk.ErrForbidden, "revoking a %s needs the permission %s, which the acting principal does not hold", ref.Kind, need)
	}
	grants, err := s.Grants(ctx, tenant)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(grants, func(g sdk.Grant) bool { return g.Kind == ref.Kind && g.ID == ref.ID })
	if i < 0 {
		return sdk.Errorf(sdk.ErrNotFound, "no %s grant %q in the institution", ref.Kind, ref.ID)
	}
	g := grants[i]
	var missing []string
	for _, p := range g.Permissions {
		if !slices.Contains(heldPerms, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return sdk.Errorf(sdk.ErrForbidden, "the grant gives %s, which the acting principal does not hold: nobody revokes beyond what they hold", strings.Join(missing, ", "))
	}
	actorType, actorID := actor.Subject.Type, actor.Subject.ID
	data := map[string]any{"kind": g.Kind, "reason": o.Reason}
	if o.Via != "" {
		data["plugin"] = o.Via
	}
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var action string
		switch g.Kind {
		case sdk.GrantMembership, sdk.GrantRole:
			user := uuid.MustParse(g.UserID)
			roles, err := tenancy.MemberRoles(ctx, tx, tenant, user)
			if err != nil {
				return err
			}
			keep := slices.DeleteFunc(slices.Clone(roles), func(r string) bool { return g.Kind == sdk.GrantMembership || r == g.Role })
			if slices.Contains(roles, "admin") && !slices.Contains(keep, "admin") {
				n, err := tenancy.CountAdmins(ctx, tx, tenant, user)
				if err != nil {
					return err
				}
				if n == 0 {
					return sdk.Errorf(sdk.ErrConflict, "this is the institution's last admin; make someone else admin first")
				}
			}
			if g.Kind == sdk.GrantMembership {
				if err := tenancy.RemoveMember(ctx, tx, tenant, user); err != nil {
					return err
				}
				if _, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.MemberRemoved, TenantID: tenant.String(), Actor: actorType + ":" + actorID,
					RequestID: o.RequestID, Data: map[string]any{"user_id": user}}); err != nil {
					return err
				}
				action = "tenancy.member.removed"
			} else {
				if len(keep) == 0 {
					return sdk.Errorf(sdk.ErrConflict, "role %s is the member's only role: revoke the membership instead", g.Role)
				}
				if _, err := tenancy.SetMemberRoles(ctx, tx, tenant, user, keep); err != nil {
					return err
				}
				data["roles"], data["role"] = keep, g.Role
				action = "tenancy.member.roles_updated"
			}
		case sdk.GrantCustomRole:
			n, err := tenancy.RoleInUse(ctx, tx, tenant, g.ID)
			if err != nil {
				return err
			}
			if n > 0 {
				return sdk.Errorf(sdk.ErrConflict, "role %q is held by %d member(s); change their roles first", g.ID, n)
			}
			if err := tenancy.DeleteRole(ctx, tx, tenant, g.ID); err != nil {
				return err
			}
			action = "tenancy.role.deleted"
		case sdk.GrantAPIKey:
			tag, err := tx.Exec(ctx, `UPDATE kernel.api_keys SET revoked_at = now() WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL`, g.ID, tenant)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return sdk.Errorf(sdk.ErrNotFound, "no API key %s in the institution", g.ID)
			}
			data["name"] = g.Name
			action = "identity.apikey.revoked"
		}
		return audit.Append(ctx, tx, audit.Entry{TenantID: tenant.String(), ActorType: actorType, ActorID: actorID, Action: action,
			Target: g.ID, Data: data, RequestID: o.RequestID, IP: o.IP})
	})
}
