package httpapi

import (
	"net/http"
	"slices"
	"strings"

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
	Path       string // echo syntax: /api/v1/tenant/members/:user_id (parameters declared in PathParams)
	Summary    string
	Tag        string // one of openAPITags
	Access     Access
	Permission string // required for TenantScoped and Platform routes
	// PlatformPermission lets a platform operator without an institution
	// call a TenantScoped route across every institution, with this
	// permission instead of Permission.
	PlatformPermission string
	Request            any  // zero value of the JSON body type, or nil
	BodyOptional       bool // the handler accepts no body at all (the document marks the body optional)
	Response           any  // zero value of the response body type, or nil (no body)
	// ContentType of the success response when it is not JSON (Response
	// is then a string).
	ContentType string
	Status      int // success status
	// Query is a struct value whose fields, with their tags, declare the
	// query parameters the handler reads (PageQuery for a list), or nil.
	Query any
	// Errors are the problem statuses the handler answers besides those
	// its declaration implies (see Route.problemStatuses).
	Errors []int
	// Also are other answers with a body that is not a problem, by status
	// (readyz's 503).
	Also        map[int]any
	AuthLimited bool // per-IP rate limit of authentication endpoints
	Idempotent  bool // honours Idempotency-Key
	Handler     echo.HandlerFunc
}

// takesNoBody reports whether the route changes something without a
// request body: a body sent to it anyway is refused (noBody) rather than
// ignored, so that a client that thinks it sets something ({"user_id":
// ...} on an export, {"cool_off_hours": 0} on an erasure) learns it did
// not.
func (r Route) takesNoBody() bool {
	return r.Request == nil && r.Method != http.MethodGet && r.Method != http.MethodHead
}

// problemStatuses are the problem statuses the route answers: those its
// declaration implies and those its handler adds. Any route may also
// answer 500 (a failure of the kernel) and 503 (a timeout).
func (r Route) problemStatuses() []int {
	set := map[int]bool{}
	add := func(codes ...int) {
		for _, c := range codes {
			set[c] = true
		}
	}
	if r.Access != Public {
		add(http.StatusUnauthorized) // no, bad or expired credentials
	}
	if r.Access != Public && r.Access != Authenticated {
		add(http.StatusForbidden) // the access level or the permission
	}
	if r.Request != nil {
		add(http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity)
	}
	if r.takesNoBody() {
		// noBody: a body that is not empty (or {}) is refused, one over
		// the limit too.
		add(http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity)
	}
	if r.Query != nil {
		add(http.StatusUnprocessableEntity)
	}
	if strings.Contains(r.Path, ":") {
		add(http.StatusNotFound)            // a path ID that names nothing the caller can see
		add(http.StatusUnprocessableEntity) // a path parameter with NUL or text that is not UTF-8
	}
	if r.AuthLimited {
		add(http.StatusTooManyRequests)
	}
	if r.Idempotent {
		add(http.StatusBadRequest, http.StatusConflict, http.StatusUnprocessableEntity)
	}
	add(r.Errors...)
	out := make([]int, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}
