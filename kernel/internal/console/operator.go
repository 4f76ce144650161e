package console

import "net/http"

// Operator pages: what the API offers platform operators (institutions,
// plugins with restarts and last errors, reloading plugins.hcl, signing
// keys).

func (c *Console) institutions(q *req) {
	res := q.get("/api/v1/tenants?limit=100")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "institutions", view{Title: "Institutions", Nav: "op-institutions", Data: map[string]any{"tenants": res.items()}})
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
