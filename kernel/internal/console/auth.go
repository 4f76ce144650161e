package console

import (
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// home is the dashboard: who is signed in, where, and what they may do.
func (c *Console) home(q *req) {
	me := q.whoami()
	data := map[string]any{"me": me}
	if q.s.Tenant != "" {
		if res := q.get("/api/v1/tenant/plugins"); res.ok() {
			data["plugins"] = res.items()
		}
	}
	q.render(http.StatusOK, "home", view{Title: "Overview", Nav: "home", Data: data})
}

func (c *Console) loginForm(q *req) {
	if q.s.signedIn() {
		q.redirect(Prefix, "")
		return
	}
	q.render(http.StatusOK, "login", view{Title: "Sign in", Form: url.Values{"next": {q.r.URL.Query().Get("next")}}})
}

// nextPage is where to go after signing in: a console page, nothing else.
func nextPage(v string) string { return consolePath(v, Prefix) }

// consolePath is v when it is a path of the console's own (no scheme, no
// host, no backslash or control character a browser might read
// otherwise), else fallback: no parameter redirects anywhere else.
func consolePath(v, fallback string) string {
	if v != Prefix && !strings.HasPrefix(v, Prefix+"/") && !strings.HasPrefix(v, Prefix+"?") {
		return fallback
	}
	if strings.ContainsAny(v, "\\") || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fallback
	}
	return v
}

func (c *Console) login(q *req) {
	f := q.r.PostForm
	body := map[string]string{"email": strings.TrimSpace(f.Get("email")), "password": f.Get("password")}
	if t := strings.TrimSpace(f.Get("tenant")); t != "" {
		body["tenant"] = t
	}
	res := c.call(q.r, "", http.MethodPost, "/api/v1/auth/login", body)
	if !res.ok() {
		form := url.Values{"email": {f.Get("email")}, "tenant": {f.Get("tenant")}, "next": {f.Get("next")}}
		q.render(statusFor(res), "login", view{Title: "Sign in", Error: res.message(), Fields: res.fields(), Form: form})
		return
	}
	q.s.Email = body["email"]
	if mfa, _ := res.Body["mfa_required"].(bool); mfa {
		q.s.MFA = str(res.Body["mfa_token"])
		q.s.Enrol, _ = res.Body["mfa_enrolment_required"].(bool)
		q.redirect(Prefix+"/login/mfa?next="+url.QueryEscape(nextPage(f.Get("next"))), "")
		return
	}
	q.takeTokens(res.Body)
	q.redirect(afterSignIn(q, res.Body, nextPage(f.Get("next"))))
}

// afterSignIn is where a sign-in leads: the page asked for, or, for
// someone in several institutions who named none, the choice of one.
func afterSignIn(q *req, b map[string]any, next string) (string, string) {
	if q.s.Tenant == "" && len(objects(b["memberships"])) > 0 {
		return Prefix + "/account", "Choose the institution to work in."
	}
	return next, ""
}

// mfaForm asks for the second factor; when the institution requires one
// the person has not set up, it enrols an authenticator first.
func (c *Console) mfaForm(q *req) {
	if q.s.MFA == "" {
		q.redirect(Prefix+"/login", "")
		return
	}
	v := view{Title: "Two-factor authentication", Form: url.Values{"next": {q.r.URL.Query().Get("next")}}, Data: map[string]any{}}
	if q.s.Enrol {
		res := c.call(q.r, "", http.MethodPost, "/api/v1/auth/mfa/setup", map[string]string{"mfa_token": q.s.MFA})
		if !res.ok() {
			q.s.MFA = ""
			q.render(statusFor(res), "login", view{Title: "Sign in", Error: res.message()})
			return
		}
		if err := enrolmentData(v.Data, res.Body); err != nil {
			q.fail(http.StatusInternalServerError, err.Error())
			return
		}
	}
	q.render(http.StatusOK, "mfa", v)
}

func (c *Console) mfaVerify(q *req) {
	if q.s.MFA == "" {
		q.redirect(Prefix+"/login", "Your sign-in expired; please start again.")
		return
	}
	f := q.r.PostForm
	body := map[string]string{"mfa_token": q.s.MFA}
	if rc := strings.TrimSpace(f.Get("recovery_code")); rc != "" {
		body["recovery_code"] = rc
	} else {
		body["code"] = strings.TrimSpace(f.Get("code"))
	}
	res := c.call(q.r, "", http.MethodPost, "/api/v1/auth/mfa/verify", body)
	if !res.ok() {
		v := view{Title: "Two-factor authentication", Error: res.message(), Fields: res.fields(), Form: url.Values{"next": {f.Get("next")}}, Data: map[string]any{}}
		if res.Problem != nil && res.Problem.Code == "invalid-mfa-token" {
			q.s.MFA = ""
			q.render(statusFor(res), "login", view{Title: "Sign in", Error: "Your sign-in expired; please start again."})
			return
		}
		if q.s.Enrol && f.Get("secret") != "" {
			// The key shown stays the one pending (the person may have
			// scanned it already): show it again, from the form.
			_ = enrolmentData(v.Data, map[string]any{"secret": f.Get("secret"), "otpauth_url": f.Get("otpauth")})
		}
		q.render(statusFor(res), "mfa", v)
		return
	}
	q.takeTokens(res.Body)
	next, flash := afterSignIn(q, res.Body, nextPage(f.Get("next")))
	if codes := strs(res.Body["recovery_codes"]); len(codes) > 0 {
		q.s.Flash = flash
		q.render(http.StatusOK, "recovery", view{Title: "Your recovery codes", Data: map[string]any{"codes": codes, "next": next}})
		return
	}
	q.redirect(next, flash)
}

// enrolmentData puts an enrolment's secret and its QR code (a PNG as a
// data: URL, so no request carries the secret) into d.
func enrolmentData(d map[string]any, b map[string]any) error {
	u := str(b["otpauth_url"])
	png, err := qrcode.Encode(u, qrcode.Medium, 256)
	if err != nil {
		return err
	}
	d["secret"], d["otpauth"] = str(b["secret"]), u
	// A data: URL of PNG bytes made here: safe whatever the encoded text.
	d["qr"] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	return nil
}

func (c *Console) logout(q *req) {
	res := q.call(http.MethodPost, "/api/v1/auth/logout", nil)
	if !res.ok() && res.Status != http.StatusUnauthorized {
		q.apiFail(res)
		return
	}
	q.lost = false
	q.signedOut("You have signed out.")
}

func (c *Console) switchTenant(q *req) {
	oldSID := str(q.whoami()["session_id"])
	res := q.call(http.MethodPost, "/api/v1/auth/switch", map[string]string{"tenant": q.r.PostFormValue("tenant")})
	if !res.ok() {
		q.apiFail(res)
		return
	}
	// The old session stays valid until it expires; sign it out so that
	// one browser holds one session.
	old := q.s.Access
	q.takeTokens(res.Body)
	if oldSID != "" && str(res.Body["session_id"]) != oldSID {
		c.call(q.r, old, http.MethodPost, "/api/v1/auth/logout", nil)
	}
	q.redirect(Prefix, "You are now working in "+q.s.Tenant+".")
}

// statusFor is the console's status for a failed API call.
func statusFor(res *apiResult) int {
	if res.Status >= 400 {
		return res.Status
	}
	return http.StatusBadGateway
}
