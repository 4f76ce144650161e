package console

import (
	"fmt"
	"net/http"
	"strings"
)

// account: who I am, my institutions (switch), my second factor, my
// sessions.
func (c *Console) account(q *req) { c.renderAccount(q, http.StatusOK, "", nil) }

// renderAccount shows the account page, with the password form's error
// and its fields' messages when status is not 200.
func (c *Console) renderAccount(q *req, status int, problem string, fields map[string]string) {
	data := map[string]any{"me": q.whoami()}
	if res := q.get("/api/v1/me/sessions"); res.ok() {
		data["sessions"] = res.items()
	} else {
		data["sessionsError"] = res.message()
	}
	// One's own personal data in the current institution, where one may
	// ask for it (privacy.export.self, privacy.erasure.self).
	if res := q.get("/api/v1/me/data-exports?limit=10"); res.ok() {
		data["exports"], data["canExport"] = res.items(), true
	}
	if res := q.get("/api/v1/me/erasures?limit=10"); res.ok() {
		data["erasures"], data["canErase"] = res.items(), true
	}
	q.render(status, "account", view{Title: "Your account", Nav: "account", Data: data, Error: problem, Fields: fields})
}

// requestMine asks for an export of one's own data, or one's erasure.
func (c *Console) requestMine(q *req) {
	kind := q.r.PathValue("kind")
	path := map[string]string{"export": "/api/v1/me/data-export", "erasure": "/api/v1/me/erasure"}[kind]
	if path == "" {
		q.fail(http.StatusNotFound, "There is no such request.")
		return
	}
	res := q.call(http.MethodPost, path, nil)
	if !res.ok() {
		q.redirect(Prefix+"/account", "Nothing was requested: "+res.message())
		return
	}
	msg := "An export of your data is being prepared: it appears below when it is ready."
	if kind == "erasure" {
		msg = "Your erasure is scheduled; you can cancel it until " + funcs["when"].(func(any) string)(res.Body["not_before"]) + "."
	}
	q.redirect(Prefix+"/account", msg)
}

// downloadMine sends the browser to a short-lived signed URL of one's own
// export (the API audits the download).
func (c *Console) downloadMine(q *req) {
	res := q.call(http.MethodPost, "/api/v1/me/data-exports/"+pathEscape(q.r.PathValue("id"))+"/download", nil)
	if !res.ok() {
		q.redirect(Prefix+"/account", "No download: "+res.message())
		return
	}
	u := str(res.Body["url"])
	if !strings.HasPrefix(u, "/api/v1/blobs/") {
		q.fail(http.StatusBadGateway, "The API answered an unexpected download address.")
		return
	}
	q.redirect(u, "")
}

// cancelMine cancels one's own erasure during its cool-off.
func (c *Console) cancelMine(q *req) {
	res := q.call(http.MethodPost, "/api/v1/me/erasures/"+pathEscape(q.r.PathValue("id"))+"/cancel", nil)
	if !res.ok() {
		q.redirect(Prefix+"/account", "Not cancelled: "+res.message())
		return
	}
	q.redirect(Prefix+"/account", "Your erasure is cancelled.")
}

// changePassword changes the person's password with the current one; the
// new one is typed twice.
func (c *Console) changePassword(q *req) {
	next := q.r.PostFormValue("new_password")
	if next != q.r.PostFormValue("new_password_again") {
		c.renderAccount(q, http.StatusUnprocessableEntity, "Your password is unchanged: the new password was not typed the same twice.",
			map[string]string{"new_password_again": "is not the same as the new password"})
		return
	}
	res := q.call(http.MethodPost, "/api/v1/me/password", map[string]string{"current_password": q.r.PostFormValue("current_password"), "new_password": next})
	if !res.ok() {
		msg := res.message()
		if f := res.fields(); len(f) > 0 {
			msg = "Your password is unchanged: see the fields below."
		}
		c.renderAccount(q, statusFor(res), msg, res.fields())
		return
	}
	q.redirect(Prefix+"/account", fmt.Sprintf("Your password is changed. Your other sessions (%s) were signed out.", str(res.Body["sessions_revoked"])))
}

func (c *Console) beginTOTP(q *req) {
	res := q.call(http.MethodPost, "/api/v1/me/mfa/totp", nil)
	if !res.ok() {
		q.redirect(Prefix+"/account", res.message())
		return
	}
	data := map[string]any{}
	if err := enrolmentData(data, res.Body); err != nil {
		q.fail(http.StatusInternalServerError, err.Error())
		return
	}
	q.render(http.StatusOK, "totp", view{Title: "Set up an authenticator", Nav: "account", Data: data})
}

func (c *Console) confirmTOTP(q *req) {
	res := q.call(http.MethodPost, "/api/v1/me/mfa/totp/confirm", map[string]string{"code": strings.TrimSpace(q.r.PostFormValue("code"))})
	if !res.ok() {
		// Show the same secret again: it is pending until confirmed.
		data := map[string]any{"secret": q.r.PostFormValue("secret")}
		if s := q.r.PostFormValue("secret"); s != "" {
			_ = enrolmentData(data, map[string]any{"secret": s, "otpauth_url": q.r.PostFormValue("otpauth")})
		}
		q.render(statusFor(res), "totp", view{Title: "Set up an authenticator", Nav: "account", Error: res.message(), Fields: res.fields(), Data: data})
		return
	}
	q.render(http.StatusOK, "recovery", view{Title: "Your recovery codes", Nav: "account", Data: map[string]any{"codes": strs(res.Body["recovery_codes"]), "next": Prefix + "/account"}})
}

func (c *Console) revokeSession(q *req) {
	res := q.call(http.MethodDelete, "/api/v1/me/sessions/"+pathEscape(q.r.PathValue("id")), nil)
	if !res.ok() {
		q.redirect(Prefix+"/account", "Could not revoke the session: "+res.message())
		return
	}
	q.redirect(Prefix+"/account", "The session was revoked.")
}

// newRecoveryCodes replaces the recovery codes (a code is needed).
func (c *Console) newRecoveryCodes(q *req) {
	res := q.call(http.MethodPost, "/api/v1/me/mfa/recovery-codes", map[string]string{"code": strings.TrimSpace(q.r.PostFormValue("code"))})
	if !res.ok() {
		q.redirect(Prefix+"/account", "No new recovery codes: "+res.message())
		return
	}
	q.render(http.StatusOK, "recovery", view{Title: "Your recovery codes", Nav: "account", Data: map[string]any{"codes": strs(res.Body["recovery_codes"]), "next": Prefix + "/account"}})
}

// disableMFA turns the second factor off (a code is needed).
func (c *Console) disableMFA(q *req) {
	res := q.call(http.MethodPost, "/api/v1/me/mfa/disable", map[string]string{"code": strings.TrimSpace(q.r.PostFormValue("code"))})
	if !res.ok() {
		q.redirect(Prefix+"/account", "Two-factor authentication is still on: "+res.message())
		return
	}
	q.redirect(Prefix+"/account", "Two-factor authentication is off.")
}
