package plugintest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/wire"
)

// ApplyRetention sends the plugin a retention request as the kernel does
// (ApplyRetention, in its wire form) and answers its result, or its error.
//
// Since: v1.3
func (h *Harness) ApplyRetention(req sdk.RetentionRequest) (sdk.RetentionResult, error) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := h.rt.ApplyRetention(ctx, sdk.EncodeRetentionRequest(req))
	if err != nil {
		return sdk.RetentionResult{}, err
	}
	return sdk.DecodeRetentionResult(out), nil
}

// governance is the default host's state for the privileged host
// services: peers for retention, grants, revocations and a signing key.
type governance struct {
	mu      sync.Mutex
	peers   []*Harness
	grants  map[string][]sdk.Grant // tenant -> grants added with AddGrant
	revoked []Revocation
	kid     string
	priv    ed25519.PrivateKey
}

// Revocation is a grant the plugin revoked through the default host.
//
// Since: v1.3
type Revocation struct {
	Actor    sdk.Principal
	TenantID string
	Grant    sdk.GrantRef
	Reason   string
}

func (r *recordingHost) gov() *governance {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.governance == nil {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(fmt.Sprintf("plugintest: generating a signing key: %v", err))
		}
		r.governance = &governance{grants: map[string][]sdk.Grant{}, kid: "plugintest-" + newUUID(), priv: priv}
	}
	return r.governance
}

// AddRetentionPeer lets the plugin reach another plugin's retention
// classes through the default host (Host.RetentionClasses,
// Host.ApplyRetention), as the kernel fans out to every plugin enabled for
// an institution (SetEnabled on the peer's Harness turns it off for one).
// The plugin's own classes are always there.
//
// Since: v1.3
func (h *Harness) AddRetentionPeer(peer *Harness) {
	g := h.mustRecorder("AddRetentionPeer").gov()
	g.mu.Lock()
	g.peers = append(g.peers, peer)
	g.mu.Unlock()
}

// AddGrant adds a grant Host.Grants lists for its institution, beside the
// memberships of the users User and Join made: an API key, a custom role,
// an orphan.
//
// Since: v1.3
func (h *Harness) AddGrant(tenantID string, g sdk.Grant) {
	gv := h.mustRecorder("AddGrant").gov()
	gv.mu.Lock()
	gv.grants[tenantID] = append(gv.grants[tenantID], g)
	gv.mu.Unlock()
}

// Revocations are the grants the plugin revoked through the default host,
// oldest first.
//
// Since: v1.3
func (h *Harness) Revocations() []Revocation {
	g := h.mustRecorder("Revocations").gov()
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.revoked)
}

// JWKS is the key set that verifies what the default host's Sign signs
// (the harness's own key, as /.well-known/jwks.json holds the kernel's).
//
// Since: v1.3
func (h *Harness) JWKS() []byte {
	g := h.mustRecorder("JWKS").gov()
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "kid": g.kid, "use": "sig", "alg": "EdDSA",
		"x": base64.RawURLEncoding.EncodeToString(g.priv.Public().(ed25519.PublicKey)),
	}}})
	return b
}

func (h *Harness) mustRecorder(what string) *recordingHost {
	if h.recorder == nil {
		h.t.Fatalf("plugintest: %s needs the default host (not WithHost)", what)
	}
	return h.recorder
}

// allowed refuses a privileged call the manifest does not declare, as the
// kernel does (the harness assumes the operator allowed what it declares).
func (r *recordingHost) allowed(c sdk.Capability) error {
	if !slices.Contains(r.h.manifest.Capabilities, c) {
		return sdk.Errorf(sdk.ErrForbidden, "plugin %s does not declare the capability %q", r.h.manifest.Name, c)
	}
	return nil
}

// retentionPlugins are the harnesses whose classes the plugin reaches.
func (r *recordingHost) retentionPlugins() []*Harness {
	g := r.gov()
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*Harness{r.h}, g.peers...)
}

// RetentionClasses lists the classes of the plugin and its peers enabled
// for tenantID.
func (r *recordingHost) RetentionClasses(_ context.Context, tenantID string) ([]sdk.RetentionClassInfo, error) {
	if err := r.allowed(sdk.CapRetention); err != nil {
		return nil, err
	}
	if !isUUID(tenantID) {
		return nil, sdk.Errorf(sdk.ErrInvalid, "tenant_id %q is not a UUID", tenantID)
	}
	var out []sdk.RetentionClassInfo
	for _, p := range r.retentionPlugins() {
		if _, enabled := p.tenantConfig(tenantID); !enabled {
			continue
		}
		for _, c := range p.wire.Retention {
			info := sdk.RetentionClassInfo{Plugin: p.manifest.Name, Name: c.Name, Description: c.Description, HoldKinds: wire.HoldKinds(c)}
			for _, a := range c.Actions {
				info.Actions = append(info.Actions, sdk.RetentionAction(a))
			}
			out = append(out, info)
		}
	}
	return out, nil
}

// ApplyRetention sends the request to the named plugin (itself or a peer)
// if it is enabled for the institution.
func (r *recordingHost) ApplyRetention(_ context.Context, plugin string, req sdk.RetentionRequest) (sdk.RetentionResult, error) {
	if err := r.allowed(sdk.CapRetention); err != nil {
		return sdk.RetentionResult{}, err
	}
	if !isUUID(req.TenantID) {
		return sdk.RetentionResult{}, sdk.Errorf(sdk.ErrInvalid, "tenant_id %q is not a UUID", req.TenantID)
	}
	for _, p := range r.retentionPlugins() {
		if p.manifest.Name != plugin {
			continue
		}
		if _, enabled := p.tenantConfig(req.TenantID); !enabled {
			return sdk.RetentionResult{}, sdk.Errorf(sdk.ErrNotFound, "plugin %s is not enabled for the institution", plugin)
		}
		return p.ApplyRetention(req)
	}
	return sdk.RetentionResult{}, sdk.Errorf(sdk.ErrNotFound, "no plugin %q", plugin)
}

// Grants lists the memberships of the users User and Join made in
// tenantID (a membership and a role grant per role, with the plugin's
// permissions the roles grant by default) and the grants AddGrant added.
func (r *recordingHost) Grants(_ context.Context, tenantID string) ([]sdk.Grant, error) {
	if err := r.allowed(sdk.CapGrants); err != nil {
		return nil, err
	}
	if !isUUID(tenantID) {
		return nil, sdk.Errorf(sdk.ErrInvalid, "tenant_id %q is not a UUID", tenantID)
	}
	var out []sdk.Grant
	membersMu.Lock()
	users := make([]string, 0, len(members))
	for u, ts := range members {
		if _, ok := ts[tenantID]; ok {
			users = append(users, u)
		}
	}
	membersMu.Unlock()
	slices.Sort(users)
	for _, u := range users {
		roles, ok := membership(u, tenantID)
		if !ok {
			continue
		}
		var all []string
		for _, role := range roles {
			perms := r.rolePermissions(role)
			all = append(all, perms...)
			out = append(out, sdk.Grant{Kind: sdk.GrantRole, ID: u + "/" + role, UserID: u, Role: role, Permissions: perms})
		}
		slices.Sort(all)
		out = append(out, sdk.Grant{Kind: sdk.GrantMembership, ID: u, UserID: u, Roles: roles, Permissions: slices.Compact(all)})
	}
	g := r.gov()
	g.mu.Lock()
	out = append(out, g.grants[tenantID]...)
	g.mu.Unlock()
	return out, nil
}

func (r *recordingHost) rolePermissions(role string) []string {
	perms := []string{}
	for _, p := range r.h.manifest.Permissions {
		if slices.Contains(p.DefaultRoles, role) {
			perms = append(perms, p.Name)
		}
	}
	return perms
}

// RevokeGrant revokes as the kernel would, approximately: the actor must
// be an admin member of the institution (the kernel checks the
// permissions of its routes and that the actor holds what the grant
// gives). A membership or role of a user User made is removed; a grant
// AddGrant added is dropped; the revocation is recorded (Revocations) and
// audited.
func (r *recordingHost) RevokeGrant(ctx context.Context, actor sdk.Principal, tenantID string, ref sdk.GrantRef, reason string) error {
	if err := r.allowed(sdk.CapGrants); err != nil {
		return err
	}
	if !isUUID(tenantID) {
		return sdk.Errorf(sdk.ErrInvalid, "tenant_id %q is not a UUID", tenantID)
	}
	if roles, ok := membership(actor.UserID, tenantID); actor.Kind != sdk.User || !ok || !slices.Contains(roles, "admin") {
		return sdk.Errorf(sdk.ErrForbidden, "the actor may not revoke grants in this institution")
	}
	found := false
	switch ref.Kind {
	case sdk.GrantMembership:
		membersMu.Lock()
		if ts := members[strings.ToLower(ref.ID)]; ts != nil {
			_, found = ts[tenantID]
			delete(ts, tenantID)
		}
		membersMu.Unlock()
	case sdk.GrantRole:
		user, role, _ := strings.Cut(ref.ID, "/")
		if roles, ok := membership(user, tenantID); ok && slices.Contains(roles, role) {
			if len(roles) == 1 {
				return sdk.Errorf(sdk.ErrConflict, "role %s is the member's only role: revoke the membership", role)
			}
			remember(user, tenantID, slices.DeleteFunc(roles, func(x string) bool { return x == role }))
			found = true
		}
	}
	g := r.gov()
	g.mu.Lock()
	g.grants[tenantID] = slices.DeleteFunc(g.grants[tenantID], func(x sdk.Grant) bool {
		if x.Kind == ref.Kind && x.ID == ref.ID {
			found = true
			return true
		}
		return false
	})
	if found {
		g.revoked = append(g.revoked, Revocation{Actor: actor, TenantID: tenantID, Grant: ref, Reason: reason})
	}
	g.mu.Unlock()
	if !found {
		return sdk.Errorf(sdk.ErrNotFound, "no %s grant %q in the institution", ref.Kind, ref.ID)
	}
	r.mu.Lock()
	r.audit = append(r.audit, sdk.AuditEntry{TenantID: tenantID, Actor: actor, Action: "grants.revoke", TargetType: ref.Kind, TargetID: ref.ID,
		Details: map[string]any{"reason": reason, "plugin": r.h.manifest.Name}})
	r.mu.Unlock()
	return nil
}

// Sign signs with the harness's key (JWKS verifies it), as the kernel's
// Sign does with its keyring.
func (r *recordingHost) Sign(_ context.Context, purpose string, payload []byte) (sdk.Signature, error) {
	if err := r.allowed(sdk.CapSign); err != nil {
		return sdk.Signature{}, err
	}
	if err := wire.CheckSignRequest(r.h.manifest.Name, purpose, payload); err != nil {
		return sdk.Signature{}, sdk.Errorf(sdk.ErrInvalid, "%v", err)
	}
	g := r.gov()
	jws, err := sdk.SignatureJWS(g.priv, g.kid, sdk.SignatureClaims{
		Issuer: "plugintest", Plugin: r.h.manifest.Name, Purpose: purpose, SHA256: sha256Hex(payload), IssuedAt: time.Now().Unix(),
	})
	if err != nil {
		return sdk.Signature{}, err
	}
	return sdk.Signature{KeyID: g.kid, Algorithm: "EdDSA", JWS: jws}, nil
}

// RetentionClassesFunc and the others below complete HostFuncs.

// RetentionClasses calls RetentionClassesFunc.
func (h HostFuncs) RetentionClasses(ctx context.Context, tenantID string) ([]sdk.RetentionClassInfo, error) {
	if h.RetentionClassesFunc == nil {
		return nil, sdk.Errorf(sdk.ErrUnavailable, "no RetentionClasses in this host")
	}
	return h.RetentionClassesFunc(ctx, tenantID)
}

// ApplyRetention calls ApplyRetentionFunc.
func (h HostFuncs) ApplyRetention(ctx context.Context, plugin string, req sdk.RetentionRequest) (sdk.RetentionResult, error) {
	if h.ApplyRetentionFunc == nil {
		return sdk.RetentionResult{}, sdk.Errorf(sdk.ErrUnavailable, "no ApplyRetention in this host")
	}
	return h.ApplyRetentionFunc(ctx, plugin, req)
}

// Grants calls GrantsFunc.
func (h HostFuncs) Grants(ctx context.Context, tenantID string) ([]sdk.Grant, error) {
	if h.GrantsFunc == nil {
		return nil, sdk.Errorf(sdk.ErrUnavailable, "no Grants in this host")
	}
	return h.GrantsFunc(ctx, tenantID)
}

// RevokeGrant calls RevokeGrantFunc.
func (h HostFuncs) RevokeGrant(ctx context.Context, actor sdk.Principal, tenantID string, g sdk.GrantRef, reason string) error {
	if h.RevokeGrantFunc == nil {
		return sdk.Errorf(sdk.ErrUnavailable, "no RevokeGrant in this host")
	}
	return h.RevokeGrantFunc(ctx, actor, tenantID, g, reason)
}

// Sign calls SignFunc.
func (h HostFuncs) Sign(ctx context.Context, purpose string, payload []byte) (sdk.Signature, error) {
	if h.SignFunc == nil {
		return sdk.Signature{}, sdk.Errorf(sdk.ErrUnavailable, "no Sign in this host")
	}
	return h.SignFunc(ctx, purpose, payload)
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
