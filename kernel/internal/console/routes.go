package console

import "net/http"

// routes registers every page and action. Paths have no trailing slash
// (the kernel removes it before routing).
func (c *Console) routes() {
	m := c.mux
	m.Handle("GET "+Prefix+"/static/", http.StripPrefix(Prefix, cacheStatic(http.FileServer(http.FS(staticFS)))))
	// The directory itself is no page (and the kernel strips the trailing
	// slash the file server would redirect to).
	m.HandleFunc(Prefix+"/static", c.page(func(q *req) { q.fail(http.StatusNotFound, "There is no page at "+q.r.URL.Path+".") }))

	m.HandleFunc("GET "+Prefix, c.authed(c.home))
	m.HandleFunc("GET "+Prefix+"/{$}", c.authed(c.home))
	m.HandleFunc("GET "+Prefix+"/login", c.page(c.loginForm))
	m.HandleFunc("POST "+Prefix+"/login", c.page(c.login))
	m.HandleFunc("GET "+Prefix+"/login/mfa", c.page(c.mfaForm))
	m.HandleFunc("POST "+Prefix+"/login/mfa", c.page(c.mfaVerify))
	m.HandleFunc("POST "+Prefix+"/logout", c.authed(c.logout))
	m.HandleFunc("POST "+Prefix+"/switch", c.authed(c.switchTenant))

	m.HandleFunc("GET "+Prefix+"/account", c.authed(c.account))
	m.HandleFunc("POST "+Prefix+"/account/totp", c.authed(c.beginTOTP))
	m.HandleFunc("POST "+Prefix+"/account/totp/confirm", c.authed(c.confirmTOTP))
	m.HandleFunc("POST "+Prefix+"/account/sessions/{id}/revoke", c.authed(c.revokeSession))
	m.HandleFunc("POST "+Prefix+"/account/recovery-codes", c.authed(c.newRecoveryCodes))
	m.HandleFunc("POST "+Prefix+"/account/mfa/disable", c.authed(c.disableMFA))
	m.HandleFunc("POST "+Prefix+"/account/password", c.authed(c.changePassword))
	m.HandleFunc("POST "+Prefix+"/account/data/{kind}", c.authed(c.requestMine))
	m.HandleFunc("POST "+Prefix+"/account/exports/{id}/download", c.authed(c.downloadMine))
	m.HandleFunc("POST "+Prefix+"/account/erasures/{id}/cancel", c.authed(c.cancelMine))

	m.HandleFunc("GET "+Prefix+"/institution", c.authed(c.institution))
	m.HandleFunc("POST "+Prefix+"/institution", c.authed(c.saveInstitution))
	m.HandleFunc("GET "+Prefix+"/plugins", c.authed(c.plugins))
	m.HandleFunc("POST "+Prefix+"/plugins/{name}/enabled", c.authed(c.setPluginEnabled))
	m.HandleFunc("GET "+Prefix+"/plugins/{name}/settings", c.authed(c.pluginSettings))
	m.HandleFunc("POST "+Prefix+"/plugins/{name}/settings", c.authed(c.savePluginSettings))

	m.HandleFunc("GET "+Prefix+"/people", c.authed(c.people))
	m.HandleFunc("POST "+Prefix+"/people/invite", c.authed(c.invite))
	m.HandleFunc("POST "+Prefix+"/people/invitations/{id}/revoke", c.authed(c.revokeInvitation))
	m.HandleFunc("GET "+Prefix+"/people/{id}", c.authed(c.member))
	m.HandleFunc("POST "+Prefix+"/people/{id}/roles", c.authed(c.setMemberRoles))
	m.HandleFunc("POST "+Prefix+"/people/{id}/remove", c.authed(c.removeMember))
	m.HandleFunc("POST "+Prefix+"/people/{id}/{kind}", c.authed(c.requestPersonal))
	m.HandleFunc("GET "+Prefix+"/privacy", c.authed(c.privacy))
	m.HandleFunc("POST "+Prefix+"/privacy/exports/{id}/download", c.authed(c.downloadExport))
	m.HandleFunc("POST "+Prefix+"/privacy/erasures/{id}/{step}", c.authed(c.erasureStep))
	m.HandleFunc("GET "+Prefix+"/roles", c.authed(c.roles))
	m.HandleFunc("GET "+Prefix+"/roles/{role}", c.authed(c.roleForm))
	m.HandleFunc("POST "+Prefix+"/roles", c.authed(c.saveRole))
	m.HandleFunc("POST "+Prefix+"/roles/{role}/delete", c.authed(c.deleteRole))
	m.HandleFunc("GET "+Prefix+"/apikeys", c.authed(c.apiKeys))
	m.HandleFunc("POST "+Prefix+"/apikeys", c.authed(c.createAPIKey))
	m.HandleFunc("POST "+Prefix+"/apikeys/{id}/revoke", c.authed(c.revokeAPIKey))

	m.HandleFunc("GET "+Prefix+"/audit", c.authed(c.audit))
	m.HandleFunc("GET "+Prefix+"/events", c.authed(c.events))
	m.HandleFunc("GET "+Prefix+"/deliveries", c.authed(c.deliveries))
	m.HandleFunc("POST "+Prefix+"/deliveries/{id}/replay", c.authed(c.replayDelivery))
	m.HandleFunc("POST "+Prefix+"/deliveries/replay-dead", c.authed(c.replayDead))
	m.HandleFunc("GET "+Prefix+"/jobs", c.authed(c.jobs))
	m.HandleFunc("GET "+Prefix+"/jobs/{plugin}/{job}", c.authed(c.jobRuns))
	m.HandleFunc("POST "+Prefix+"/jobs/{plugin}/{job}/run", c.authed(c.runJob))

	m.HandleFunc("GET "+Prefix+"/apps/{plugin}/{op}", c.authed(c.screen))
	m.HandleFunc("POST "+Prefix+"/apps/{plugin}/{op}", c.authed(c.screenCreate))
	m.HandleFunc("POST "+Prefix+"/apps/{plugin}/{op}/actions/{n}", c.authed(c.screenAction))

	m.HandleFunc("GET "+Prefix+"/operator/institutions", c.authed(c.institutions))
	m.HandleFunc("POST "+Prefix+"/operator/institutions", c.authed(c.createInstitution))
	m.HandleFunc("GET "+Prefix+"/operator/audit", c.authed(c.platformAudit))
	m.HandleFunc("GET "+Prefix+"/operator/plugins", c.authed(c.platformPlugins))
	m.HandleFunc("POST "+Prefix+"/operator/plugins/reload", c.authed(c.reloadPlugins))
	m.HandleFunc("GET "+Prefix+"/operator/keys", c.authed(c.keys))
	m.HandleFunc("POST "+Prefix+"/operator/keys/rotate", c.authed(c.rotateKey))
	m.HandleFunc("POST "+Prefix+"/operator/keys/{kid}/retire", c.authed(c.retireKey))

	m.HandleFunc(Prefix+"/", c.page(func(q *req) { q.fail(http.StatusNotFound, "There is no page at "+q.r.URL.Path+".") }))
}

// cacheStatic lets browsers keep the console's script and style for an hour.
func cacheStatic(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		h.ServeHTTP(w, r)
	})
}
