package console

import (
	"net/http"
	"net/url"
	"strings"
)

// query is a page's filters, passed on to the API (only those it names).
func query(r *http.Request, keys ...string) (url.Values, string) {
	v := url.Values{}
	for _, k := range keys {
		if x := strings.TrimSpace(r.URL.Query().Get(k)); x != "" {
			v.Set(k, x)
		}
	}
	if len(v) == 0 {
		return v, ""
	}
	return v, "&" + v.Encode()
}

// audit shows the institution's audit log, newest first, filtered by the
// API (action or family, actor, target, time); "verify" checks the whole
// chain.
func (c *Console) audit(q *req) {
	c.auditPage(q, "/api/v1/tenant/audit", Prefix+"/audit", "audit", "Audit log")
}

// platformAudit is the platform's audit chain, for operators.
func (c *Console) platformAudit(q *req) {
	c.auditPage(q, "/api/v1/admin/audit", Prefix+"/operator/audit", "op-audit", "Platform audit log")
}

func (c *Console) auditPage(q *req, api, page, nav, title string) {
	filters, extra := query(q.r, "action", "actor_type", "actor_id", "target", "from", "to")
	_, more := query(q.r, "cursor")
	res := q.get(api + "?limit=100" + extra + more)
	v := view{Title: title, Nav: nav, Form: filters, Data: map[string]any{"page": page}}
	if !res.ok() {
		v.Error, v.Fields = res.message(), res.fields()
	} else {
		v.Data["entries"] = res.items()
		if next := str(res.Body["next_cursor"]); next != "" {
			older := url.Values{"cursor": {next}}
			for k, x := range filters {
				older[k] = x
			}
			v.Data["older"] = page + "?" + older.Encode()
		}
	}
	if q.r.URL.Query().Get("verify") == "1" {
		r := q.get(api + "/verify")
		if r.ok() {
			v.Data["verify"] = r.Body
		} else {
			v.Data["verifyError"] = r.message()
		}
	}
	q.render(statusOr(res), "audit", v)
}

func (c *Console) events(q *req) {
	filters, extra := query(q.r, "type", "from", "to", "cursor")
	res := q.get("/api/v1/events?limit=50" + extra)
	v := view{Title: "Events", Nav: "events", Form: filters, Data: map[string]any{}}
	if !res.ok() {
		v.Error, v.Fields = res.message(), res.fields()
	} else {
		v.Data["events"], v.Data["next"] = res.items(), str(res.Body["next_cursor"])
	}
	if types := q.get("/api/v1/events/types"); types.ok() {
		v.Data["types"] = types.items()
	}
	q.render(statusOr(res), "events", v)
}

func (c *Console) deliveries(q *req) {
	if q.r.URL.Query().Get("status") == "" && q.r.URL.Query().Get("all") == "" {
		u := *q.r.URL
		qs := u.Query()
		qs.Set("status", "dead")
		u.RawQuery = qs.Encode()
		q.redirect(u.RequestURI(), "")
		return
	}
	filters, extra := query(q.r, "status", "subscriber", "type", "cursor")
	res := q.get("/api/v1/events/deliveries?limit=50" + extra)
	v := view{Title: "Deliveries and dead letters", Nav: "deliveries", Form: filters, Data: map[string]any{}}
	if !res.ok() {
		v.Error, v.Fields = res.message(), res.fields()
	} else {
		v.Data["deliveries"], v.Data["next"] = res.items(), str(res.Body["next_cursor"])
	}
	q.render(statusOr(res), "deliveries", v)
}

func statusOr(res *apiResult) int {
	if res.ok() {
		return http.StatusOK
	}
	return statusFor(res)
}

func (c *Console) replayDelivery(q *req) {
	res := q.call(http.MethodPost, "/api/v1/events/deliveries/"+pathEscape(q.r.PathValue("id"))+"/replay", nil)
	back := q.back(Prefix + "/deliveries")
	if !res.ok() {
		q.redirect(back, "The delivery was not replayed: "+res.message())
		return
	}
	q.redirect(back, "Delivery "+q.r.PathValue("id")+" will be delivered again.")
}

func (c *Console) replayDead(q *req) {
	body := map[string]any{"status": "dead"}
	if s := q.r.PostFormValue("subscriber"); s != "" {
		body["subscriber"] = s
	}
	res := q.call(http.MethodPost, "/api/v1/events/deliveries/replay", body)
	back := q.back(Prefix + "/deliveries")
	if !res.ok() {
		q.redirect(back, "Nothing was replayed: "+res.message())
		return
	}
	q.redirect(back, str(res.Body["replayed"])+" dead letters will be delivered again.")
}

func (c *Console) jobs(q *req) {
	res := q.get("/api/v1/jobs")
	if !res.ok() {
		q.apiFail(res)
		return
	}
	q.render(http.StatusOK, "jobs", view{Title: "Jobs", Nav: "jobs", Data: map[string]any{"jobs": res.items()}})
}

func (c *Console) jobRuns(q *req) {
	plugin, job := q.r.PathValue("plugin"), q.r.PathValue("job")
	filters, extra := query(q.r, "status", "cursor")
	res := q.get("/api/v1/jobs/" + pathEscape(plugin) + "/" + pathEscape(job) + "/runs?limit=50" + extra)
	v := view{Title: plugin + " / " + job, Nav: "jobs", Form: filters, Data: map[string]any{"plugin": plugin, "job": job}}
	if !res.ok() {
		v.Error, v.Fields = res.message(), res.fields()
	} else {
		v.Data["runs"], v.Data["next"] = res.items(), str(res.Body["next_cursor"])
	}
	for _, j := range q.get("/api/v1/jobs").items() {
		if str(j["plugin"]) == plugin && str(j["name"]) == job {
			v.Data["info"] = j
		}
	}
	q.render(statusOr(res), "runs", v)
}

func (c *Console) runJob(q *req) {
	plugin, job := q.r.PathValue("plugin"), q.r.PathValue("job")
	res := q.call(http.MethodPost, "/api/v1/jobs/"+pathEscape(plugin)+"/"+pathEscape(job)+"/runs", nil)
	to := Prefix + "/jobs/" + pathEscape(plugin) + "/" + pathEscape(job)
	if !res.ok() {
		q.redirect(to, "The job was not started: "+res.message())
		return
	}
	q.redirect(to, "The job was queued (run "+str(res.Body["id"])+").")
}
