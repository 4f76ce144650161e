package plugintest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
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
	remember(p.UserID, tenantID, roles)
	return p
}

// Join makes the user of p a member of another institution too, with the
// given roles, and returns the user as a principal of that institution (as
// after POST /api/v1/auth/switch). The kernel's membership answers
// (Host.Membership, Authorize) then know both.
//
// Since: v1.2
func Join(p sdk.Principal, tenantID string, roles ...string) sdk.Principal {
	q := sdk.Principal{Kind: sdk.User, UserID: p.UserID, TenantID: tenantID, Roles: slices.Clone(roles)}
	remember(p.UserID, tenantID, roles)
	return q
}

// membersMu guards members: user ID → institution ID → roles, the
// kernel's memberships of the users User and Join made.
var (
	membersMu sync.Mutex
	members   = map[string]map[string][]string{}
)

func remember(userID, tenantID string, roles []string) {
	membersMu.Lock()
	defer membersMu.Unlock()
	if members[userID] == nil {
		members[userID] = map[string][]string{}
	}
	members[userID][tenantID] = slices.Clone(roles)
}

// membership is a user's roles in an institution, and whether they belong.
func membership(userID, tenantID string) ([]string, bool) {
	membersMu.Lock()
	defer membersMu.Unlock()
	roles, ok := members[strings.ToLower(userID)][tenantID]
	return slices.Clone(roles), ok
}

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
