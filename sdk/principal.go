package sdk

import "slices"

// PrincipalKind says what a principal is.
//
// Since: v1.2 (a plain string before)
type PrincipalKind string

// The kinds of principal.
const (
	User      PrincipalKind = "user"
	APIKey    PrincipalKind = "apikey"
	Anonymous PrincipalKind = "anonymous"
)

// Principal is who a request acts as, as the kernel resolved it.
//
// Since: v1.0
type Principal struct {
	Kind     PrincipalKind
	UserID   string // users
	APIKeyID string // API keys
	TenantID string // "" when the credentials name no institution
	Roles    []string
	// Permissions are the caller's permissions among the plugin's own, as
	// decided by the kernel for this request: Can answers locally, without
	// a call back to the kernel.
	Permissions []string
	Operator    bool
}

// Can reports whether the principal holds one of the plugin's permissions.
func (p Principal) Can(permission string) bool { return slices.Contains(p.Permissions, permission) }

// Anonymous reports whether the request carried no credentials.
func (p Principal) Anonymous() bool { return p.Kind == "" || p.Kind == Anonymous }

// IsUser reports whether the principal is a person (not an API key).
func (p Principal) IsUser() bool { return p.Kind == User }

// ID is the user's or API key's ID.
func (p Principal) ID() string {
	if p.Kind == APIKey {
		return p.APIKeyID
	}
	return p.UserID
}

// Actor names the principal in events and audit entries: "user:<id>",
// "apikey:<id>" or "anonymous".
func (p Principal) Actor() string {
	switch p.Kind {
	case User:
		return "user:" + p.UserID
	case APIKey:
		return "apikey:" + p.APIKeyID
	}
	return "anonymous"
}
