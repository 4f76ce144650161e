package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"
)

// roleNames are the institution's roles (built-in and custom).
func (q *req) roleNames() []string {
	res := q.get("/api/v1/tenant/roles")
	var out []string
	for _, r := range res.items() {
		out = append(out, str(r["name"]))
	}
	return out
}

func (c *Console) people(q *req) {
	c.renderPeople(q, http.StatusOK, view{})
}

func (c *Console) renderPeople(q *req, status int, v view) {
	members := q.get("/api/v1/tenant/members?limit=100")
	if !members.ok() {
		q.apiFail(members)
		return
	}
	data := map[string]any{"members": members.items(), "roles": q.roleNames(), "next": str(members.Body["next_cursor"])}
	if inv := q.get("/api/v1/tenant/invitations?limit=100"); inv.ok() {
		data["invitations"] = inv.items()
	}
	for k, x := range v.Data {
		data[k] = x
	}
	v.Title, v.Nav, v.Data = "People", "people", data
	q.render(status, "people", v)
}

func (c *Console) invite(q *req) {
	f := q.r.PostForm
	roles := f["roles"]
	if roles == nil {
		roles = []string{}
	}
	res := q.call(http.MethodPost, "/api/v1/tenant/invitations", map[string]any{"email": strings.TrimSpace(f.Get("email")), "roles": roles})
	if !res.ok() {
		c.renderPeople(q, statusFor(res), view{Error: "The invitation was not sent: " + res.message(), Fields: res.fields(), Form: url.Values{"email": {f.Get("email")}, "roles": roles}})
		return
	}
	q.redirect(Prefix+"/people", "An invitation was sent to "+str(res.Body["email"])+".")
}

func (c *Console) revokeInvitation(q *req) {
	res := q.call(http.MethodDelete, "/api/v1/tenant/invitations/"+pathEscape(q.r.PathValue("id")), nil)
	if !res.ok() {
		q.redirect(Prefix+"/people", "Could not revoke the invitation: "+res.message())
		return
	}
	q.redirect(Prefix+"/people", "The invitation was revoked.")
}

func (c *Console) member(q *req) {
	c.renderMember(q, http.StatusOK, view{})
}

func (c *Console) renderMember(q *req, status int, v view) {
	res := q.get("/api/v1/tenant/members/" + pathEscape(q.r.PathValue("id")))
	if !res.ok() {
		q.apiFail(res)
		return
	}
	v.Title, v.Nav = str(res.Body["email"]), "people"
	v.Data = map[string]any{"member": res.Body, "roles": q.roleNames(), "held": strs(res.Body["roles"])}
	q.render(status, "member", v)
}

func (c *Console) setMemberRoles(q *req) {
	id := q.r.PathValue("id")
	roles := q.r.PostForm["roles"]
	if roles == nil {
		roles = []string{}
	}
	res := q.call(http.MethodPut, "/api/v1/tenant/members/"+pathEscape(id)+"/roles", map[string]any{"roles": roles})
	if !res.ok() {
		c.renderMember(q, statusFor(res), view{Error: "The roles were not changed: " + res.message(), Fields: res.fields()})
		return
	}
	q.redirect(Prefix+"/people/"+pathEscape(id), "The roles were saved.")
}

func (c *Console) removeMember(q *req) {
	res := q.call(http.MethodDelete, "/api/v1/tenant/members/"+pathEscape(q.r.PathValue("id")), nil)
	if !res.ok() {
		c.renderMember(q, statusFor(res), view{Error: "The member was not removed: " + res.message()})
		return
	}
	q.redirect(Prefix+"/people", "The member was removed from the institution.")
}

// permissionGroups is the permission catalogue grouped by owner (the
// kernel or a plugin), for the picker.
func (q *req) permissionGroups() ([]map[string]any, *apiResult) {
	res := q.get("/api/v1/tenant/permissions")
	if !res.ok() {
		return nil, res
	}
	var groups []map[string]any
	index := map[string]int{}
	for _, p := range res.items() {
		owner := str(p["owner"])
		i, ok := index[owner]
		if !ok {
			i = len(groups)
			index[owner] = i
			groups = append(groups, map[string]any{"owner": owner, "permissions": []map[string]any{}})
		}
		groups[i]["permissions"] = append(groups[i]["permissions"].([]map[string]any), p)
	}
	return groups, res
}

func (c *Console) roles(q *req) {
	res := q.get("/api/v1/tenant/roles")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "roles", view{Title: "Roles", Nav: "roles", Data: map[string]any{"roles": res.items()}})
}

func (c *Console) roleForm(q *req) {
	name := q.r.PathValue("role")
	data := map[string]any{"new": name == "new", "name": "", "description": "", "held": []string{}}
	if name != "new" {
		res := q.get("/api/v1/tenant/roles")
		found := false
		for _, r := range res.items() {
			if str(r["name"]) == name {
				data["name"], data["description"], data["held"], data["builtin"] = name, str(r["description"]), strs(r["permissions"]), r["builtin"]
				found = true
			}
		}
		if !found {
			q.fail(http.StatusNotFound, "There is no role named "+name+".")
			return
		}
	}
	groups, res := q.permissionGroups()
	if groups == nil {
		q.apiFail(res)
		return
	}
	data["groups"] = groups
	q.render(http.StatusOK, "role", view{Title: "Role", Nav: "roles", Data: data})
}

func (c *Console) saveRole(q *req) {
	f := q.r.PostForm
	name := strings.TrimSpace(f.Get("name"))
	perms := f["permissions"]
	if perms == nil {
		perms = []string{}
	}
	res := q.call(http.MethodPut, "/api/v1/tenant/roles/"+pathEscape(name), map[string]any{"description": f.Get("description"), "permissions": perms})
	if !res.ok() {
		groups, _ := q.permissionGroups()
		q.render(statusFor(res), "role", view{Title: "Role", Nav: "roles", Error: "The role was not saved: " + res.message(), Fields: res.fields(),
			Data: map[string]any{"new": f.Get("new") == "true", "name": name, "description": f.Get("description"), "held": perms, "groups": groups}})
		return
	}
	q.redirect(Prefix+"/roles", "The role "+name+" was saved.")
}

func (c *Console) deleteRole(q *req) {
	res := q.call(http.MethodDelete, "/api/v1/tenant/roles/"+pathEscape(q.r.PathValue("role")), nil)
	if !res.ok() {
		q.redirect(Prefix+"/roles", "The role was not deleted: "+res.message())
		return
	}
	q.redirect(Prefix+"/roles", "The role was deleted (a built-in role is back to its defaults).")
}

func (c *Console) apiKeys(q *req) {
	c.renderKeys(q, http.StatusOK, view{})
}

func (c *Console) renderKeys(q *req, status int, v view) {
	res := q.get("/api/v1/tenant/apikeys")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	data := map[string]any{"keys": res.items()}
	if perms := q.get("/api/v1/me/permissions"); perms.ok() {
		data["mine"] = strs(perms.Body["permissions"])
	}
	for k, x := range v.Data {
		data[k] = x
	}
	v.Title, v.Nav, v.Data = "API keys", "apikeys", data
	q.render(status, "apikeys", v)
}

func (c *Console) createAPIKey(q *req) {
	f := q.r.PostForm
	perms := f["permissions"]
	if perms == nil {
		perms = []string{}
	}
	body := map[string]any{"name": strings.TrimSpace(f.Get("name")), "permissions": perms}
	if d := strings.TrimSpace(f.Get("expires")); d != "" {
		t, err := time.Parse("2006-01-02", d)
		if err != nil {
			c.renderKeys(q, http.StatusUnprocessableEntity, view{Error: "The key was not created.", Fields: map[string]string{"expires_at": "must be a date such as 2027-01-31"}, Form: f})
			return
		}
		body["expires_at"] = t.UTC()
	}
	res := q.call(http.MethodPost, "/api/v1/tenant/apikeys", body)
	if !res.ok() {
		c.renderKeys(q, statusFor(res), view{Error: "The key was not created: " + res.message(), Fields: res.fields(), Form: f})
		return
	}
	// The secret is shown in this answer only, never stored by the console.
	c.renderKeys(q, http.StatusCreated, view{Data: map[string]any{"created": res.Body}})
}

func (c *Console) revokeAPIKey(q *req) {
	res := q.call(http.MethodDelete, "/api/v1/tenant/apikeys/"+pathEscape(q.r.PathValue("id")), nil)
	if !res.ok() {
		q.redirect(Prefix+"/apikeys", "The key was not revoked: "+res.message())
		return
	}
	q.redirect(Prefix+"/apikeys", "The key was revoked.")
}
