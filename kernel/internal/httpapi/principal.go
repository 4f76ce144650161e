package httpapi

import (
	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
)

// Principal is who a request acts as, resolved from its credentials.
type Principal struct {
	Kind        string // "user" or "apikey"
	UserID      uuid.UUID
	KeyID       uuid.UUID
	TenantID    uuid.UUID // uuid.Nil: the token names no tenant
	SessionID   uuid.UUID
	Roles       []string
	Permissions []string // API keys: what the key was given
	// API keys: the person who made the key (for a key made by a key, the
	// person behind that one) and the roles they hold now in the key's
	// institution. A key acts with its permissions as far as these roles
	// still grant them.
	CreatorID    uuid.UUID
	CreatorRoles []string
	Operator     bool
	MFA          bool

	// The IDs as text, as the token carried them: the policy input and the
	// plugin's view take them on every request.
	userText, tenantText string
}

// userString is UserID as text.
func (p *Principal) userString() string {
	if p.userText == "" {
		return p.UserID.String()
	}
	return p.userText
}

// tenantString is TenantID as text.
func (p *Principal) tenantString() string {
	if p.tenantText == "" {
		return p.TenantID.String()
	}
	return p.tenantText
}

// HasTenant reports whether the principal acts in a tenant.
func (p *Principal) HasTenant() bool { return p.TenantID != uuid.Nil }

// Actor names the principal in audit entries and events.
func (p *Principal) Actor() (kind, id string) {
	if p == nil {
		return "anonymous", ""
	}
	if p.Kind == "apikey" {
		return "apikey", p.KeyID.String()
	}
	if p.Operator && !p.HasTenant() {
		return "operator", p.UserID.String()
	}
	return "user", p.UserID.String()
}

const principalKey = "edulure.principal"

func principalOf(c echo.Context) *Principal {
	p, _ := c.Get(principalKey).(*Principal)
	return p
}
