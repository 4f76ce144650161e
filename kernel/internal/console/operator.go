package console

import (
	"net/http"
	"strings"
)

// Operator pages: what the API offers platform operators (institutions,
// plugins with restarts and last errors, reloading plugins.hcl, signing
// keys).

func (c *Console) institutions(q *req) {
	c.renderInstitutions(q, http.StatusOK, view{})
}

func (c *Console) renderInstitutions(q *req, status int, v view) {
	res := q.get("/api/v1/tenants?limit=100")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	v.Title, v.Nav, v.Data = "Institutions", "op-institutions", map[string]any{"tenants": res.items()}
	q.render(status, "institutions", v)
}

// createInstitution: POST /api/v1/tenants; its first admin is invited
// (or, for a verified account, made admin).
func (c *Console) createInstitution(q *req) {
	f := q.r.PostForm
	body := map[string]string{"slug": strings.TrimSpace(f.Get("slug")), "name": strings.TrimSpace(f.Get("name"))}
	if e := strings.TrimSpace(f.Get("admin_email")); e != "" {
		body["admin_email"] = e
	}
	res := q.call(http.MethodPost, "/api/v1/tenants", body)
	if !res.ok() {
		c.renderInstitutions(q, statusFor(res), view{Error: "The institution was not created: " + res.message(), Fields: res.fields(), Form: f})
		return
	}
	q.redirect(Prefix+"/operator/institutions", "The institution "+str(res.Body["name"])+" was created.")
}

func (c *Console) platformPlugins(q *req) {
	res := q.get("/api/v1/plugins")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "platform-plugins", view{Title: "Installed plugins", Nav: "op-plugins", Data: map[string]any{"plugins": res.items()}})
}

func (c *Console) reloadPlugins(q *req) {
	res := q.call(http.MethodPost, "/api/v1/plugins/reload", nil)
	if !res.ok() {
		q.redirect(Prefix+"/operator/plugins", "plugins.hcl was not reloaded: "+res.message())
		return
	}
	q.redirect(Prefix+"/operator/plugins", "plugins.hcl was reloaded: "+str(res.Body))
}

func (c *Console) keys(q *req) {
	res := q.get("/api/v1/admin/keys")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "keys", view{Title: "Signing keys", Nav: "op-keys", Data: map[string]any{"keys": res.items()}})
}

func (c *Console) rotateKey(q *req) {
	res := q.call(http.MethodPost, "/api/v1/admin/keys/rotate", nil)
	if !res.ok() {
		q.redirect(Prefix+"/operator/keys", "The key was not rotated: "+res.message())
		return
	}
	q.redirect(Prefix+"/operator/keys", "A new signing key "+str(res.Body["kid"])+" now signs; older keys still verify until retired.")
}

func (c *Console) retireKey(q *req) {
	res := q.call(http.MethodDelete, "/api/v1/admin/keys/"+pathEscape(q.r.PathValue("kid")), nil)
	if !res.ok() {
		q.redirect(Prefix+"/operator/keys", "The key was not retired: "+res.message())
		return
	}
	q.redirect(Prefix+"/operator/keys", "The key was retired: tokens it signed no longer work.")
}
