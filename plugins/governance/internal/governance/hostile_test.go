package governance_test

import (
	"testing"

	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

// TestHostileBodies sends what a hostile or careless client may send to
// each route that takes a body: every answer is a 2xx or a 4xx problem,
// never a 5xx.
func TestHostileBodies(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, &peer{name: "records"})
	gov := plugintest.New(t, governance.New())
	gov.AddRetentionPeer(h)
	id := plugintest.NewTenant()
	admin := plugintest.User(id, "admin")
	inc := gov.Do(admin, "POST", "/api/v1/governance/incidents", map[string]any{"title": "Fuzzed"})
	if inc.Status != 201 {
		t.Fatalf("opening an incident: %s", inc)
	}
	var incident struct{ ID string }
	inc.JSON(t, &incident)
	camp := gov.Do(admin, "POST", "/api/v1/governance/reviews", map[string]any{"title": "Fuzzed"})
	var campaign struct{ ID string }
	camp.JSON(t, &campaign)
	paths := []string{
		"/api/v1/governance/incidents",
		"/api/v1/governance/incidents/" + incident.ID + "/evidence",
		"/api/v1/governance/retention/holds",
		"/api/v1/governance/retention/executions",
		"/api/v1/governance/reviews",
		"/api/v1/governance/reviews/" + campaign.ID + "/items/" + plugintest.NewID() + "/attest",
	}
	for _, s := range []string{`{"title":"x"}`, `{"kind":"person","subject_id":"` + admin.UserID + `","reason":"r"}`, `{"kind":"course","subject_id":"\u0000","reason":"r"}`,
		`{"title":"x","content_type":"text/plain","sha256":"` + sum(nil) + `","size":1e30}`, `{"dry_run":"yes"}`, `{"decision":"keep","note":"` + string(make([]byte, 2000)) + `"}`,
		`[]`, `null`, `{"title":"\ud800"}`, ``, `{"kind":"tenant","reason":" "}`} {
		for _, path := range paths {
			res := gov.Do(admin, "POST", path, []byte(s))
			if res.Status >= 500 {
				t.Errorf("POST %s %q: %s", path, s, res)
			}
			if res.Status >= 400 && res.Header.Get("Content-Type") != plugintest.ProblemContentType {
				t.Errorf("POST %s %q: a %d that is not problem+json: %s", path, s, res.Status, res)
			}
		}
	}
}
