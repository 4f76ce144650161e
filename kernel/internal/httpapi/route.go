package httpapi

import (
	"github.com/labstack/echo/v4"
)

// Access says who may call a route before its permission is checked.
type Access int

const (
	// Public routes need no credentials.
	Public Access = iota
	// Authenticated routes need a valid user or API key, any tenant or none.
	Authenticated
	// UserOnly routes need a user (not an API key), any tenant or none.
	UserOnly
	// TenantScoped routes need a token scoped to a tenant and the route's permission.
	TenantScoped
	// Platform routes need a platform operator and the route's permission.
	Platform
)

// Route is one kernel route. The route table is the single source of both
// the registered handlers and the OpenAPI document, so they cannot drift.
type Route struct {
	Method     string
	Path       string // echo syntax: /api/v1/tenant/members/:user_id
	Summary    string
	Tag        string
	Access     Access
	Permission string // required for TenantScoped and Platform routes
	// PlatformPermission lets a platform operator without an institution
	// call a TenantScoped route across every institution, with this
	// permission instead of Permission.
	PlatformPermission string
	Request            any // zero value of the JSON body type, or nil
	Response           any // zero value of the JSON response type, or nil (no body)
	Status             int // success status
	Query              []string
	AuthLimited        bool // per-IP rate limit of authentication endpoints
	Idempotent         bool // honours Idempotency-Key
	Handler            echo.HandlerFunc
}
