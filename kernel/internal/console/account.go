package console

import (
	"net/http"
	"strings"
)

// account: who I am, my institutions (switch), my second factor, my
// sessions.
func (c *Console) account(q *req) {
	data := map[string]any{"me": q.whoami()}
	if res := q.get("/api/v1/me/sessions"); res.ok() {
		data["sessions"] = res.items()
	} else {
		data["sessionsError"] = res.message()
	}
	q.render(http.StatusOK, "account", view{Title: "Your account", Nav: "account", Data: data})
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
