package console

import (
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/edulure/edulure/kernel/internal/seal"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the kernel serves the console.
const Prefix = "/console"

// csp is the console's Content Security Policy: its own script and style
// files only (no inline script or style, no eval), images from itself and
// data: URLs (the TOTP QR code), forms posting to itself, no framing.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Deps are what the console needs.
type Deps struct {
	// API is the kernel's HTTP handler: every call the console makes goes
	// through it, as a client's would.
	API    http.Handler
	Sealer *seal.Sealer // seals the session cookie
	Logger hclog.Logger
}

// Console is the admin console's HTTP handler.
type Console struct {
	api    http.Handler
	sealer *seal.Sealer
	log    hclog.Logger
	pages  map[string]*template.Template
	mux    *http.ServeMux
	now    func() time.Time
}

// New builds the console.
func New(d Deps) (*Console, error) {
	if d.API == nil || d.Sealer == nil {
		return nil, fmt.Errorf("console: API and Sealer are required")
	}
	if d.Logger == nil {
		d.Logger = hclog.NewNullLogger()
	}
	c := &Console{api: d.API, sealer: d.Sealer, log: d.Logger, mux: http.NewServeMux(), now: time.Now}
	if err := c.parseTemplates(); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

func (c *Console) parseTemplates() error {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return err
	}
	base := template.New("").Funcs(funcs)
	var pages []string
	for _, n := range names {
		if strings.HasPrefix(n, "templates/_") {
			if _, err := base.ParseFS(templateFS, n); err != nil {
				return fmt.Errorf("console: parsing %s: %w", n, err)
			}
			continue
		}
		pages = append(pages, n)
	}
	c.pages = map[string]*template.Template{}
	for _, n := range pages {
		t, err := base.Clone()
		if err != nil {
			return err
		}
		if _, err := t.ParseFS(templateFS, n); err != nil {
			return fmt.Errorf("console: parsing %s: %w", n, err)
		}
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		c.pages[name] = t
	}
	return nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
	c.mux.ServeHTTP(w, r)
}

// handler is a console page or action.
type handler func(*req)

// req is one request to the console: the browser's, its session, and the
// way to answer.
type req struct {
	c         *Console
	w         http.ResponseWriter
	r         *http.Request
	s         *session
	me        map[string]any // GET /api/v1/me, once per request
	perms     []string       // GET /api/v1/me/permissions, once per request
	permsRead bool
	lost      bool // the API no longer takes the session's token
}

// page serves a page that needs no sign-in (the login form).
func (c *Console) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := &req{c: c, w: w, r: r, s: c.load(r)}
		if r.Method == http.MethodPost && !q.formOK() {
			return
		}
		h(q)
	}
}

// authed serves a page for a signed-in person: refreshes the access token
// when it has expired, and sends anyone else to the login form.
func (c *Console) authed(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := &req{c: c, w: w, r: r, s: c.load(r)}
		if !q.s.signedIn() {
			next := ""
			if r.Method == http.MethodGet {
				next = "?next=" + url.QueryEscape(r.URL.RequestURI())
			}
			q.redirect(Prefix+"/login"+next, "")
			return
		}
		if r.Method == http.MethodPost && !q.formOK() {
			return
		}
		if c.now().Unix() >= q.s.Expires-30 && !q.refresh() {
			q.signedOut("Your session has ended. Please sign in again.")
			return
		}
		h(q)
	}
}

// formOK checks a form post: same origin, parsable, with the session's
// CSRF token.
func (q *req) formOK() bool {
	q.r.Body = http.MaxBytesReader(q.w, q.r.Body, 1<<20)
	if !sameOrigin(q.r) {
		q.fail(http.StatusForbidden, "This form was sent from another site, so it was refused.")
		return false
	}
	if err := q.r.ParseForm(); err != nil {
		q.fail(http.StatusBadRequest, "The form could not be read: "+err.Error())
		return false
	}
	if !checkCSRF(q.r, q.s) {
		q.fail(http.StatusForbidden, "This form has expired (its security token does not match your session). Go back, reload the page and try again.")
		return false
	}
	return true
}

// refresh trades the refresh token for new tokens.
func (q *req) refresh() bool {
	if q.s.Refresh == "" {
		return false
	}
	res := q.c.call(q.r, "", http.MethodPost, "/api/v1/auth/refresh", map[string]string{"refresh_token": q.s.Refresh})
	if !res.ok() {
		return false
	}
	q.takeTokens(res.Body)
	return true
}

// takeTokens keeps a token answer's tokens in the session.
func (q *req) takeTokens(b map[string]any) {
	q.s.Access, q.s.Refresh = str(b["access_token"]), str(b["refresh_token"])
	n, _ := b["expires_in"].(float64)
	q.s.Expires = expiresAt(q.c.now(), n)
	q.s.MFA, q.s.Enrol = "", false
	if t, ok := b["tenant"].(map[string]any); ok {
		q.s.Tenant = str(t["name"])
	} else {
		q.s.Tenant = ""
	}
}

// call calls the API with the session's token.
func (q *req) call(method, path string, body any) *apiResult {
	res := q.c.call(q.r, q.s.Access, method, path, body)
	if res.Status == http.StatusUnauthorized && q.s.signedIn() {
		q.lost = true
	}
	return res
}

// get is call(GET).
func (q *req) get(path string) *apiResult { return q.call(http.MethodGet, path, nil) }

// whoami is GET /api/v1/me, asked once per request.
func (q *req) whoami() map[string]any {
	if q.me == nil && q.s.signedIn() {
		res := q.get("/api/v1/me")
		q.me = map[string]any{}
		if res.ok() {
			q.me = res.Body
		}
	}
	return q.me
}

// permissions are what the signed-in person holds in the institution,
// asked once per request.
func (q *req) permissions() []string {
	if !q.permsRead && q.s.signedIn() {
		q.permsRead = true
		if res := q.get("/api/v1/me/permissions"); res.ok() {
			q.perms = strs(res.Body["permissions"])
		}
	}
	return q.perms
}

// sections are the console's own pages, each with the permissions of
// the API routes it reads (any one of them shows it): a person sees in
// the menu only what they may use. "settings.update" is the institution
// form's button.
var sections = map[string][]string{
	"institution":     {"tenancy.settings.read"},
	"settings.update": {"tenancy.settings.update"},
	"plugins":         {"tenancy.plugin.read"},
	"people":          {"tenancy.member.read"},
	"roles":           {"tenancy.role.read"},
	"privacy":         {"privacy.export.manage", "privacy.erasure.manage"},
	"apikeys":         {"identity.apikey.read", "identity.apikey.create"},
	"audit":           {"audit.log.read"},
	"events":          {"tenancy.event.read"},
	"deliveries":      {"tenancy.event.read"},
	"jobs":            {"tenancy.job.read"},
}

// can reports which sections the person may use.
func (q *req) can() map[string]bool {
	held := q.permissions()
	out := map[string]bool{}
	for name, perms := range sections {
		for _, p := range perms {
			if slices.Contains(held, p) {
				out[name] = true
			}
		}
	}
	return out
}

func (q *req) operator() bool {
	u, _ := q.whoami()["user"].(map[string]any)
	op, _ := u["operator"].(bool)
	return op
}

// view is what every page template gets.
type view struct {
	Title    string
	Nav      string // the active section
	CSRF     string
	Flash    string
	Error    string
	Fields   map[string]string // field → the API's message
	Form     url.Values        // what was posted, to fill the form again
	Email    string
	Tenant   string
	SignedIn bool
	Operator bool
	Can      map[string]bool // the sections the person may use
	Screens  []screenLink
	Data     map[string]any
}

// render answers a page.
func (q *req) render(status int, name string, v view) {
	if q.lost {
		q.signedOut("Your session has ended or was revoked. Please sign in again.")
		return
	}
	t := q.c.pages[name]
	if t == nil {
		http.Error(q.w, "no page "+name, http.StatusInternalServerError)
		return
	}
	v.CSRF, v.Flash = q.s.CSRF, q.s.Flash
	v.Email, v.Tenant, v.SignedIn = q.s.Email, q.s.Tenant, q.s.signedIn()
	if v.SignedIn {
		v.Operator = q.operator()
		if q.s.Tenant != "" {
			v.Can = q.can()
			v.Screens = q.c.screenLinks(q)
		}
	}
	if v.Fields == nil {
		v.Fields = map[string]string{}
	}
	if v.Form == nil {
		v.Form = url.Values{}
	}
	q.s.Flash = ""
	q.c.save(q.w, q.r, q.s)
	h := q.w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	q.w.WriteHeader(status)
	if err := t.ExecuteTemplate(q.w, "page", v); err != nil {
		q.c.log.Error("console: rendering", "page", name, "error", err)
	}
}

// redirect answers 303 See Other, with a message for the next page.
func (q *req) redirect(to, flash string) {
	if q.lost {
		q.signedOut("Your session has ended or was revoked. Please sign in again.")
		return
	}
	if flash != "" {
		q.s.Flash = flash
	}
	q.c.save(q.w, q.r, q.s)
	q.w.Header().Set("Cache-Control", "no-store")
	http.Redirect(q.w, q.r, to, http.StatusSeeOther)
}

// signedOut forgets the tokens and sends the browser to the login form.
func (q *req) signedOut(msg string) {
	q.s = q.c.clear(q.w, q.r, msg)
	q.w.Header().Set("Cache-Control", "no-store")
	http.Redirect(q.w, q.r, Prefix+"/login", http.StatusSeeOther)
}

// fail answers an error page.
func (q *req) fail(status int, msg string) {
	q.render(status, "error", view{Title: http.StatusText(status), Error: msg})
}

// apiFail answers an error page for a failed API call.
func (q *req) apiFail(res *apiResult) {
	status := res.Status
	if status < 400 {
		status = http.StatusBadGateway
	}
	q.fail(status, res.message())
}

// back is where a form came from (for redirects), within the console.
func (q *req) back(fallback string) string {
	return consolePath(q.r.PostFormValue("back"), fallback)
}
