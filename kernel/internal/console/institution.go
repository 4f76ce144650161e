package console

import (
	"net/http"
	"strconv"
	"strings"
)

// institution: the institution's settings (name, self sign-up, roles that
// need a second factor, erasure cool-off).
func (c *Console) institution(q *req) {
	c.renderInstitution(q, http.StatusOK, view{})
}

func (c *Console) renderInstitution(q *req, status int, v view) {
	res := q.get("/api/v1/tenant")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	v.Title, v.Nav = "Institution settings", "institution"
	v.Data = map[string]any{"tenant": res.Body, "roles": q.roleNames(), "mfa": strs(res.Body["mfa_required_roles"])}
	q.render(status, "institution", v)
}

func (c *Console) saveInstitution(q *req) {
	f := q.r.PostForm
	roles := f["mfa_required_roles"]
	if roles == nil {
		roles = []string{}
	}
	body := map[string]any{"name": strings.TrimSpace(f.Get("name")), "self_signup": f.Get("self_signup") == "true", "mfa_required_roles": roles}
	if h := strings.TrimSpace(f.Get("erasure_cool_off_hours")); h != "" {
		if n, err := strconv.Atoi(h); err == nil {
			body["erasure_cool_off_hours"] = n
		} else {
			body["erasure_cool_off_hours"] = h // the API names what is wrong
		}
	}
	res := q.call(http.MethodPatch, "/api/v1/tenant", body)
	if !res.ok() {
		c.renderInstitution(q, statusFor(res), view{Error: "The settings were not saved: " + res.message(), Fields: res.fields()})
		return
	}
	q.s.Tenant = str(res.Body["name"])
	q.redirect(Prefix+"/institution", "The institution's settings were saved.")
}
