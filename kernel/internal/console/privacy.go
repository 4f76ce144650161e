package console

import (
	"net/http"
	"strings"
)

// privacy: the institution's personal data requests: members' exports
// (with a download link) and erasures (cancel during the cool-off, resume
// a failed one). Members' pages ask for new ones.
func (c *Console) privacy(q *req) {
	data := map[string]any{}
	v := view{Title: "Personal data", Nav: "privacy", Data: data}
	if res := q.get("/api/v1/tenant/data-exports?limit=50"); res.ok() {
		data["exports"] = res.items()
	} else {
		v.Error = res.message()
	}
	if res := q.get("/api/v1/tenant/erasures?limit=50"); res.ok() {
		data["erasures"] = res.items()
	} else {
		v.Error = res.message()
	}
	emails := map[string]string{}
	for _, m := range q.get("/api/v1/tenant/members?limit=100").items() {
		emails[str(m["user_id"])] = str(m["email"])
	}
	data["emails"] = emails
	q.render(http.StatusOK, "privacy", v)
}

// requestPersonal asks for a member's export or erasure.
func (c *Console) requestPersonal(q *req) {
	id, kind := q.r.PathValue("id"), q.r.PathValue("kind")
	what := map[string]string{"export": "data-export", "erasure": "erasure"}[kind]
	if what == "" {
		q.fail(http.StatusNotFound, "There is no such request.")
		return
	}
	res := q.call(http.MethodPost, "/api/v1/tenant/members/"+pathEscape(id)+"/"+what, nil)
	if !res.ok() {
		q.redirect(Prefix+"/people/"+pathEscape(id), "The "+kind+" was not requested: "+res.message())
		return
	}
	msg := "An export of this member's data is being prepared."
	if kind == "erasure" {
		msg = "The erasure is scheduled; it can be cancelled until " + funcs["when"].(func(any) string)(res.Body["not_before"]) + "."
	}
	q.redirect(Prefix+"/privacy", msg)
}

// downloadExport sends the browser to a short-lived signed URL of the
// archive (the signature is the credential; the API audits the download).
func (c *Console) downloadExport(q *req) {
	res := q.call(http.MethodPost, "/api/v1/tenant/data-exports/"+pathEscape(q.r.PathValue("id"))+"/download", nil)
	if !res.ok() {
		q.redirect(Prefix+"/privacy", "No download: "+res.message())
		return
	}
	u := str(res.Body["url"])
	if !strings.HasPrefix(u, "/api/v1/blobs/") {
		q.fail(http.StatusBadGateway, "The API answered an unexpected download address.")
		return
	}
	q.redirect(u, "")
}

// erasureStep cancels or resumes an erasure.
func (c *Console) erasureStep(q *req) {
	step := q.r.PathValue("step")
	if step != "cancel" && step != "resume" {
		q.fail(http.StatusNotFound, "There is no such action.")
		return
	}
	res := q.call(http.MethodPost, "/api/v1/tenant/erasures/"+pathEscape(q.r.PathValue("id"))+"/"+step, nil)
	if !res.ok() {
		q.redirect(Prefix+"/privacy", "Not done: "+res.message())
		return
	}
	q.redirect(Prefix+"/privacy", "The erasure is now "+str(res.Body["state"])+".")
}
