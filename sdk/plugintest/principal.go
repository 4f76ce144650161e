package plugintest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"github.com/edulure/edulure/sdk"
)

// NewTenant returns a new random institution ID (a UUID), for tests that
// need several institutions.
func NewTenant() string { return newUUID() }

// NewID returns a new random UUID: the ID of a user the test refers to, of
// a course, of anything the kernel identifies by UUID.
func NewID() string { return newUUID() }

// User is a person with a new random user ID, a member of institution
// tenantID with the given built-in roles ("admin", "instructor",
// "learner"). Its Permissions are left nil: Harness.Do grants it, as the
// kernel does, the plugin's permissions whose DefaultRoles include one of
// its roles. Set Permissions to model an institution that changed what its
// roles grant.
//
// The user is also remembered as a member of tenantID with those roles, so
// the default host's Authorize answers for a principal that names only the
// user's ID, as a plugin sends it to ask about someone else ("is this
// person a member who may teach?"), as the kernel would from its records.
func User(tenantID string, roles ...string) sdk.Principal {
	p := sdk.Principal{Kind: sdk.User, UserID: newUUID(), TenantID: tenantID, Roles: slices.Clone(roles)}
	members.Store(p.UserID, member{tenantID: tenantID, roles: slices.Clone(roles)})
	return p
}

// member is what User records: the kernel's membership of a user.
type member struct {
	tenantID string
	roles    []string
}

// members are the users User made, by ID.
var members sync.Map

// APIKey is an API key of institution tenantID, with a new random ID,
// holding exactly the permissions given.
func APIKey(tenantID string, permissions ...string) sdk.Principal {
	return sdk.Principal{Kind: sdk.APIKey, APIKeyID: newUUID(), TenantID: tenantID, Permissions: append([]string{}, permissions...)}
}

// Anonymous is a caller without credentials.
func Anonymous() sdk.Principal { return sdk.Principal{Kind: sdk.Anonymous} }

// Resolve returns p as the plugin receives it from the kernel. Its
// Permissions are those of the plugin's own it holds in its institution: a
// user without explicit Permissions gets those the manifest grants its
// roles by default (DefaultRoles), as the kernel does for an institution
// that kept the default grants. Outside an institution it has none.
func (h *Harness) Resolve(p sdk.Principal) sdk.Principal {
	p.Roles = slices.Clone(p.Roles)
	if p.Anonymous() {
		p.Kind, p.Permissions = sdk.Anonymous, nil
		return p
	}
	if p.TenantID == "" {
		p.Permissions = nil
		return p
	}
	var out []string
	for _, perm := range h.manifest.Permissions {
		granted := slices.Contains(p.Permissions, perm.Name)
		if p.Kind == "user" && p.Permissions == nil {
			granted = slices.ContainsFunc(perm.DefaultRoles, func(r string) bool { return slices.Contains(p.Roles, r) })
		}
		if granted {
			out = append(out, perm.Name)
		}
	}
	if out == nil {
		out = []string{}
	}
	p.Permissions = out
	return p
}

func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("plugintest: reading random bytes: %v", err))
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("plugintest: reading random bytes: %v", err))
	}
	return hex.EncodeToString(b)
}

func isUUID(s string) bool { return sdk.IsUUID(s) }
