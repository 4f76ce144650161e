package sdk

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// The privileged capabilities: the operator must allow each one to the
// plugin in its block of plugins.hcl (capabilities = ["retention"]) before
// the kernel loads a manifest declaring it.
//
// Since: v1.3
const (
	// CapRetention: Host.RetentionClasses and Host.ApplyRetention, over
	// every plugin enabled for an institution.
	CapRetention Capability = wire.CapRetention
	// CapGrants: Host.Grants and Host.RevokeGrant.
	CapGrants Capability = wire.CapGrants
	// CapSign: Host.Sign, with the kernel's Ed25519 keyring.
	CapSign Capability = wire.CapSign
)

// GovernanceHost is the part of Host that needs a privileged capability:
// each call is refused with ErrForbidden unless the manifest declares it
// and the operator allowed it.
//
// Since: v1.3
type GovernanceHost interface {
	// RetentionClasses lists the retention classes of every plugin enabled
	// for tenantID (CapRetention).
	RetentionClasses(ctx context.Context, tenantID string) ([]RetentionClassInfo, error)
	// ApplyRetention asks plugin, which must be enabled for req.TenantID,
	// to apply retention to one of its classes (CapRetention). The
	// plugin's failure is the call's error.
	ApplyRetention(ctx context.Context, plugin string, req RetentionRequest) (RetentionResult, error)
	// Grants lists tenantID's grants: members and their roles, custom
	// roles, API keys, with orphans marked (CapGrants).
	Grants(ctx context.Context, tenantID string) ([]Grant, error)
	// RevokeGrant revokes a grant on behalf of actor, who must be allowed
	// to: hold the permission of the kernel's route for it (members.manage,
	// roles.manage, apikeys.manage) and every permission the grant gives.
	// The kernel audits it with actor as the actor (CapGrants).
	RevokeGrant(ctx context.Context, actor Principal, tenantID string, g GrantRef, reason string) error
	// Sign signs payload for purpose, which must start with the plugin's
	// name and a dot (CapSign). VerifySignature checks it offline.
	Sign(ctx context.Context, purpose string, payload []byte) (Signature, error)
}

// RetentionClassInfo is a retention class of some plugin, as
// Host.RetentionClasses lists it.
//
// Since: v1.3
type RetentionClassInfo struct {
	Plugin      string            `json:"plugin"`
	Name        string            `json:"name"`
	Description string            `json:"description"`
	Actions     []RetentionAction `json:"actions"`
	HoldKinds   []string          `json:"hold_kinds"`
}

// The kinds of grants.
//
// Since: v1.3
const (
	GrantMembership = "membership"  // a member, with all their roles; revoking removes the member
	GrantRole       = "role"        // one role of a member; ID "<user_id>/<role>"
	GrantCustomRole = "custom_role" // a role the institution defined; ID its name
	GrantAPIKey     = "api_key"     // an API key; ID its ID
)

// Grant is one thing that gives someone permissions in an institution.
//
// Since: v1.3
type Grant struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	// UserID is the member (membership, role) or the key's creator
	// (api_key; "" when the creator's account is gone).
	UserID string `json:"user_id,omitempty"`
	// Role is the role (role) or the role's name (custom_role).
	Role string `json:"role,omitempty"`
	// Roles are a membership's roles.
	Roles []string `json:"roles,omitempty"`
	// Permissions the grant gives.
	Permissions []string `json:"permissions"`
	// Name is an API key's name, a custom role's description.
	Name      string     `json:"name,omitempty"`
	CreatedAt time.Time  `json:"created_at,omitzero"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Orphan: an API key whose creator is no longer a member, a custom
	// role nobody holds; OrphanReason says which.
	Orphan       bool   `json:"orphan"`
	OrphanReason string `json:"orphan_reason,omitempty"`
}

// Ref is the grant's reference, for RevokeGrant.
func (g Grant) Ref() GrantRef { return GrantRef{Kind: g.Kind, ID: g.ID} }

// GrantRef names a grant.
//
// Since: v1.3
type GrantRef struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// SignatureType is the JWS typ header of a kernel signature: never "JWT",
// so that a signature cannot pass as an access token.
//
// Since: v1.3
const SignatureType = "edulure-signature+jws"

// Signature is a kernel signature of a payload: a compact JWS whose
// claims hold the payload's SHA-256 (not the payload), the purpose and
// the plugin that asked.
//
// Since: v1.3
type Signature struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm"` // "EdDSA"
	JWS       string `json:"jws"`
}

// SignatureClaims are the claims of a Signature's JWS.
//
// Since: v1.3
type SignatureClaims struct {
	Issuer   string `json:"iss"`
	Plugin   string `json:"plugin"`
	Purpose  string `json:"purpose"`
	SHA256   string `json:"sha256"` // of the payload, lowercase hex
	IssuedAt int64  `json:"iat"`    // Unix seconds
}

// ErrSignature is what VerifySignature's errors wrap.
//
// Since: v1.3
var ErrSignature = errors.New("signature does not verify")

// VerifySignature checks sig over payload against a JSON Web Key Set (the
// kernel's /.well-known/jwks.json, or a copy kept by an auditor), without
// the kernel: the JWS's type, algorithm and key, its Ed25519 signature,
// and that it signs this payload. It returns the signed claims.
//
// Since: v1.3
func VerifySignature(jwks []byte, sig Signature, payload []byte) (SignatureClaims, error) {
	var none SignatureClaims
	fail := func(format string, args ...any) (SignatureClaims, error) {
		return none, fmt.Errorf("%w: %s", ErrSignature, fmt.Sprintf(format, args...))
	}
	parts := strings.Split(sig.JWS, ".")
	if len(parts) != 3 {
		return fail("not a compact JWS")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return fail("header is not base64url")
	}
	var h struct {
		Alg  string   `json:"alg"`
		Kid  string   `json:"kid"`
		Typ  string   `json:"typ"`
		Crit []string `json:"crit"`
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return fail("header is not JSON")
	}
	switch {
	case h.Alg != "EdDSA":
		return fail("algorithm %q, not EdDSA", h.Alg)
	case h.Typ != SignatureType:
		return fail("type %q, not %q", h.Typ, SignatureType)
	case len(h.Crit) > 0:
		return fail("unknown critical headers")
	case sig.KeyID != "" && sig.KeyID != h.Kid:
		return fail("key %q in the header, %q beside it", h.Kid, sig.KeyID)
	}
	var set struct {
		Keys []struct {
			Kty, Crv, X, Kid, Alg string
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		return fail("the key set is not a JWKS: %v", err)
	}
	var pub ed25519.PublicKey
	for _, k := range set.Keys {
		if k.Kid == h.Kid && k.Kty == "OKP" && k.Crv == "Ed25519" && (k.Alg == "" || k.Alg == "EdDSA") {
			if b, err := base64.RawURLEncoding.DecodeString(k.X); err == nil && len(b) == ed25519.PublicKeySize {
				pub = b
			}
		}
	}
	if pub == nil {
		return fail("no Ed25519 key %q in the key set", h.Kid)
	}
	s, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), s) {
		return fail("the Ed25519 signature is wrong")
	}
	cb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return fail("claims are not base64url")
	}
	var c SignatureClaims
	if err := json.Unmarshal(cb, &c); err != nil {
		return fail("claims are not JSON")
	}
	sum := sha256.Sum256(payload)
	if c.SHA256 != hex.EncodeToString(sum[:]) {
		return fail("it signs another payload")
	}
	return c, nil
}

// SignatureJWS makes the compact JWS of a kernel signature: the kernel's
// Sign, and sdk/plugintest's, use it.
//
// Since: v1.3
func SignatureJWS(priv ed25519.PrivateKey, kid string, c SignatureClaims) (string, error) {
	hb, err := json.Marshal(map[string]string{"alg": "EdDSA", "kid": kid, "typ": SignatureType})
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	in := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(in))), nil
}

// hostError is a governance call's error as the plugin sees it: the
// kernel's status as the sentinel of the same meaning, with its message.
func hostError(what string, err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%s: %w", what, err)
	}
	var kind error
	switch st.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.PermissionDenied:
		kind = ErrForbidden
	case codes.InvalidArgument:
		kind = ErrInvalid
	case codes.NotFound:
		kind = ErrNotFound
	case codes.FailedPrecondition, codes.AlreadyExists, codes.Aborted:
		kind = ErrConflict
	case codes.Unavailable:
		kind = ErrUnavailable
	default:
		return fmt.Errorf("%s: %s", what, st.Message())
	}
	return Errorf(kind, "%s: %s", what, st.Message())
}

func (h *hostClient) RetentionClasses(ctx context.Context, tenantID string) ([]RetentionClassInfo, error) {
	out, err := h.c.ListRetentionClasses(traced(ctx), &pluginv1.ListRetentionClassesRequest{TenantId: tenantID})
	if err != nil {
		return nil, hostError("listing retention classes", err)
	}
	infos := make([]RetentionClassInfo, 0, len(out.Classes))
	for _, c := range out.Classes {
		i := RetentionClassInfo{Plugin: c.Plugin, Name: c.Name, Description: c.Description, HoldKinds: c.HoldKinds}
		for _, a := range c.Actions {
			i.Actions = append(i.Actions, RetentionAction(a))
		}
		infos = append(infos, i)
	}
	return infos, nil
}

func (h *hostClient) ApplyRetention(ctx context.Context, plugin string, req RetentionRequest) (RetentionResult, error) {
	out, err := h.c.ApplyRetention(traced(ctx), &pluginv1.HostApplyRetentionRequest{Plugin: plugin, Request: EncodeRetentionRequest(req)})
	if err != nil {
		return RetentionResult{}, hostError(fmt.Sprintf("applying retention of %s.%s", plugin, req.Class), err)
	}
	return DecodeRetentionResult(out), nil
}

func (h *hostClient) Grants(ctx context.Context, tenantID string) ([]Grant, error) {
	out, err := h.c.ListGrants(traced(ctx), &pluginv1.ListGrantsRequest{TenantId: tenantID})
	if err != nil {
		return nil, hostError("listing grants", err)
	}
	grants := make([]Grant, 0, len(out.Grants))
	for _, g := range out.Grants {
		grants = append(grants, DecodeGrant(g))
	}
	return grants, nil
}

func (h *hostClient) RevokeGrant(ctx context.Context, actor Principal, tenantID string, g GrantRef, reason string) error {
	_, err := h.c.RevokeGrant(traced(ctx), &pluginv1.RevokeGrantRequest{
		Principal: encodePrincipal(actor), TenantId: tenantID, Kind: g.Kind, Id: g.ID, Reason: reason,
	})
	if err != nil {
		return hostError(fmt.Sprintf("revoking %s %s", g.Kind, g.ID), err)
	}
	return nil
}

func (h *hostClient) Sign(ctx context.Context, purpose string, payload []byte) (Signature, error) {
	out, err := h.c.Sign(traced(ctx), &pluginv1.SignRequest{Purpose: purpose, Payload: payload})
	if err != nil {
		return Signature{}, hostError("signing", err)
	}
	return Signature{KeyID: out.KeyId, Algorithm: out.Algorithm, JWS: out.Jws}, nil
}

// EncodeRetentionRequest is the wire form of a retention request (for
// hosts and tests).
//
// Since: v1.3
func EncodeRetentionRequest(r RetentionRequest) *pluginv1.RetentionRequest {
	out := &pluginv1.RetentionRequest{
		TenantId: r.TenantID, Class: r.Class, Action: string(r.Action), DryRun: r.DryRun,
		SampleLimit: int32(min(max(r.SampleLimit, -1), wire.MaxRetentionSamples+1)), RequestId: r.RequestID,
	}
	if !r.Cutoff.IsZero() {
		out.CutoffUnixMs = r.Cutoff.UnixMilli()
	}
	for _, h := range r.Holds {
		out.Holds = append(out.Holds, &pluginv1.RetentionHold{Kind: h.Kind, Id: h.ID})
	}
	return out
}

// DecodeRetentionRequest is the Go form of a wire retention request.
//
// Since: v1.3
func DecodeRetentionRequest(in *pluginv1.RetentionRequest) RetentionRequest {
	r := RetentionRequest{
		TenantID: in.TenantId, Class: in.Class, Action: RetentionAction(in.Action), DryRun: in.DryRun,
		SampleLimit: int(in.SampleLimit), RequestID: in.RequestId,
	}
	if in.CutoffUnixMs > 0 {
		r.Cutoff = time.UnixMilli(in.CutoffUnixMs).UTC()
	}
	for _, h := range in.Holds {
		r.Holds = append(r.Holds, RetentionHold{Kind: h.Kind, ID: h.Id})
	}
	return r
}

// EncodeRetentionResult is the wire form of a retention result.
//
// Since: v1.3
func EncodeRetentionResult(r RetentionResult) *pluginv1.RetentionResult {
	return &pluginv1.RetentionResult{Class: r.Class, Matched: r.Matched, Affected: r.Affected, SampleIds: r.SampleIDs, Archived: r.Archived}
}

// DecodeRetentionResult is the Go form of a wire retention result.
//
// Since: v1.3
func DecodeRetentionResult(in *pluginv1.RetentionResult) RetentionResult {
	return RetentionResult{Class: in.Class, Matched: in.Matched, Affected: in.Affected, SampleIDs: in.SampleIds, Archived: in.Archived}
}

// EncodeGrant is the wire form of a grant.
//
// Since: v1.3
func EncodeGrant(g Grant) *pluginv1.Grant {
	out := &pluginv1.Grant{
		Kind: g.Kind, Id: g.ID, UserId: g.UserID, Role: g.Role, Roles: g.Roles, Permissions: g.Permissions,
		Name: g.Name, Orphan: g.Orphan, OrphanReason: g.OrphanReason,
	}
	if !g.CreatedAt.IsZero() {
		out.CreatedAtUnixMs = g.CreatedAt.UnixMilli()
	}
	if g.ExpiresAt != nil {
		out.ExpiresAtUnixMs = g.ExpiresAt.UnixMilli()
	}
	return out
}

// DecodeGrant is the Go form of a wire grant.
//
// Since: v1.3
func DecodeGrant(in *pluginv1.Grant) Grant {
	g := Grant{
		Kind: in.Kind, ID: in.Id, UserID: in.UserId, Role: in.Role, Roles: in.Roles, Permissions: in.Permissions,
		Name: in.Name, Orphan: in.Orphan, OrphanReason: in.OrphanReason,
	}
	if g.Permissions == nil {
		g.Permissions = []string{}
	}
	if in.CreatedAtUnixMs > 0 {
		g.CreatedAt = time.UnixMilli(in.CreatedAtUnixMs).UTC()
	}
	if in.ExpiresAtUnixMs > 0 {
		t := time.UnixMilli(in.ExpiresAtUnixMs).UTC()
		g.ExpiresAt = &t
	}
	return g
}
