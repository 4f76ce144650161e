package httpapi_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestErasureRetriesUntilThePluginRecovers: a plugin whose erasure fails
// leaves the request incomplete (retrying, its step failed with the
// plugin's error, the kernel's data step not run), and the request
// completes on its own once the plugin recovers.
func TestErasureRetriesUntilThePluginRecovers(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_PRIVACY_MAX_ATTEMPTS", "100"}, fastPrivacy...), pluginBlock{variant: probe})
	a := b.institution("uni")
	b.coolOff(a.admin, 0)
	r := b.do("POST", "/api/v1/probe/notes", a.learner, map[string]any{"body": "Prefers the back row."})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/fail", a.admin, map[string]any{"fail": true}).Status)

	r = b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	path := "/api/v1/tenant/erasures/" + r.str("id")
	r = b.waitFor(path, a.admin, "retrying")
	steps := stepStates(r)
	require.Equal(t, "done", steps["kernel:access"])
	require.Equal(t, "failed", steps["plugin:probe"])
	require.Equal(t, "pending", steps["kernel:data"], "the kernel's data waits for every plugin")
	require.Contains(t, string(r.Raw), "told to fail")
	require.Equal(t, 1, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", a.learnerID))

	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/fail", a.admin, map[string]any{"fail": false}).Status)
	r = b.waitFor(path, a.admin, "completed")
	for step, state := range stepStates(r) {
		require.Equal(t, "done", state, step)
	}
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", a.learnerID))
	b.verifyChains()
}

// TestPersonalDataLifecycle walks a learner through a course run (enrolled,
// lessons completed, a quiz passed, a submission graded, a certificate,
// points, a note) and then through the lifecycle, with the real courses
// and gamification plugins and the probe: her export holds all of it and
// nothing of her classmate; she asks to be erased; every plugin's step
// and the kernel's are done (gamification's too, though disabled for the
// institution); an export of her then holds nothing; no table of the
// database and no stored object holds her address or name; every audit
// chain verifies; a second erasure changes nothing in the plugins. A
// person who also belongs to another institution keeps their account and
// everything there.
func TestPersonalDataLifecycle(t *testing.T) {
	t.Parallel()
	env := append([]string{"EDULURE_PRIVACY_MAX_ATTEMPTS", "100"}, append(fastEvents, fastPrivacy...)...)
	b, _ := withPluginsEnv(t, env, pluginBlock{variant: coursesPlugin}, pluginBlock{variant: gamificationPlugin}, pluginBlock{variant: probe})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	b.coolOff(a.admin, 0)
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}

	const zephEmail, zephName = "zephyrine.quillfeather@uni.test", "Zephyrine Quillfeather"
	const corEmail, corName = "cornelius.vandermeer@uni.test", "Cornelius Vandermeer"
	const bartEmail, bartName = "bartholomew.ostrander@uni.test", "Bartholomew Ostrander"
	zeph, zephID := b.joinByInvitation(a, zephEmail, zephName)
	cor, corID := b.joinByInvitation(a, corEmail, corName)
	bartA, bartID := b.joinByInvitation(a, bartEmail, bartName)
	inv := ok(b.do("POST", "/api/v1/tenant/invitations", other.admin, map[string]any{"email": bartEmail, "roles": []string{"learner"}}), 201)
	ok(b.do("POST", "/api/v1/me/invitations/accept", bartA, map[string]any{"token": inv.str("token")}), 200)
	bartB := b.login(bartEmail, other.slug)

	c := b.publishCourse(a)
	b.takeCourse(a, c, zeph, zephID, "My report, by "+zephName+".")
	b.takeCourse(a, c, cor, corID, "Cornelius's report.")
	ok(b.do("POST", "/api/v1/probe/notes", zeph, map[string]any{"body": "Reach me at " + zephEmail}), 201)
	ok(b.do("POST", "/api/v1/probe/notes", a.instructor, map[string]any{"body": "Asked good questions.", "user_id": zephID}), 201)
	ok(b.do("POST", "/api/v1/probe/notes", bartA, map[string]any{"body": "In A."}), 201)
	ok(b.do("POST", "/api/v1/probe/notes", bartB, map[string]any{"body": "In B, " + bartName + "."}), 201)

	// Her export: every plugin's part and the kernel's.
	r := ok(b.do("POST", "/api/v1/me/data-export", zeph, nil), 202)
	mine := "/api/v1/me/data-exports/" + r.str("id")
	b.waitFor(mine, zeph, "ready")
	x := b.download(mine+"/download", zeph)
	sources := map[string]bool{}
	for _, p := range x.manifest.Parts {
		sources[p.Source] = true
	}
	require.Equal(t, map[string]bool{"kernel": true, "courses": true, "gamification": true, "probe": true}, sources)
	for path, n := range map[string]int{
		"plugins/courses/enrolments.jsonl": 1, "plugins/courses/lesson_progress.jsonl": 2, "plugins/courses/quiz_attempts.jsonl": 1,
		"plugins/courses/submissions.jsonl": 1, "plugins/courses/certificates.jsonl": 1, "plugins/gamification/totals.jsonl": 1,
		"plugins/gamification/awards.jsonl": 2, "plugins/probe/notes.jsonl": 2, "kernel/account.jsonl": 1, "kernel/memberships.jsonl": 1,
		"kernel/invitations.jsonl": 1,
	} {
		require.Len(t, x.lines(t, path), n, path)
	}
	require.Equal(t, zephEmail, x.lines(t, "kernel/account.jsonl")[0]["email"])
	require.NotEmpty(t, x.lines(t, "kernel/audit.jsonl"))
	require.Contains(t, x.files, "plugins/probe/objects/notes/"+zephID+"/1.txt")
	for _, trace := range []string{corEmail, corName, corID, "Cornelius", bartEmail, bartID} {
		require.NotContains(t, x.text(), trace, "her export holds nothing of others")
	}

	// Bartholomew's export in the other institution, before.
	r = ok(b.do("POST", "/api/v1/tenant/members/"+bartID+"/data-export", other.admin, nil), 202)
	b.waitFor("/api/v1/tenant/data-exports/"+r.str("id"), other.admin, "ready")
	bartBefore := b.download("/api/v1/tenant/data-exports/"+r.str("id")+"/download", other.admin)
	require.Len(t, bartBefore.lines(t, "plugins/probe/notes.jsonl"), 1)

	// The scan finds her before: in the kernel, in the plugins, in objects.
	before := strings.Join(b.traces(zephEmail, zephName), "\n")
	for _, where := range []string{"kernel.users.email", "kernel.audit_personal.data", "kernel.events.data", "kernel.invitations.email",
		"plugin_courses.submissions.body", "plugin_probe.notes.body", "object /plugins/probe/tenants/" + a.id + "/notes/" + zephID, "!kernel/account.jsonl"} {
		require.Contains(t, before, where)
	}

	// A plugin disabled for the institution is still erased.
	ok(b.do("PUT", "/api/v1/tenant/plugins/gamification", a.admin, map[string]any{"enabled": false}), 200)

	r = ok(b.do("POST", "/api/v1/me/erasure", zeph, nil), 202)
	erasure := "/api/v1/tenant/erasures/" + r.str("id")
	r = b.waitFor(erasure, a.admin, "completed")
	require.Equal(t, map[string]string{"kernel:access": "done", "plugin:courses": "done", "plugin:gamification": "done", "plugin:probe": "done", "kernel:data": "done"}, stepStates(r))
	require.Equal(t, "anonymised", r.str("outcome", "account"))
	require.Positive(t, stepCounts(r)["plugin:gamification"], "%s", r.Raw)
	require.NotEmpty(t, r.Body["history"])

	// Erase, then export: nothing.
	r = ok(b.do("POST", "/api/v1/tenant/members/"+zephID+"/data-export", a.admin, nil), 202)
	after := "/api/v1/tenant/data-exports/" + r.str("id")
	b.waitFor(after, a.admin, "ready")
	require.Empty(t, b.download(after+"/download", a.admin).nonEmpty())

	// No trace of her anywhere; the chains verify.
	require.Empty(t, b.traces(zephEmail, zephName))
	b.verifyChains()
	require.Equal(t, true, ok(b.do("GET", "/api/v1/tenant/audit/verify", a.admin, nil), 200).get("valid"))
	// Her record of learning stays, under a pseudonym: the course still counts two submissions.
	require.Equal(t, 2, b.count("SELECT count(*) FROM plugin_courses.submissions WHERE tenant_id = $1", a.id))
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_courses.submissions WHERE user_id = $1", zephID))

	// Idempotent: a second erasure finds nothing left in the plugins.
	r = ok(b.do("POST", "/api/v1/tenant/members/"+zephID+"/erasure", a.admin, nil), 202)
	r = b.waitFor("/api/v1/tenant/erasures/"+r.str("id"), a.admin, "completed")
	for _, step := range []string{"plugin:courses", "plugin:gamification", "plugin:probe"} {
		require.Zero(t, stepCounts(r)[step], "%s: %s", step, r.Raw)
	}
	require.Empty(t, b.traces(zephEmail, zephName))

	// Her classmate's data is untouched.
	r = ok(b.do("POST", "/api/v1/tenant/members/"+corID+"/data-export", a.admin, nil), 202)
	b.waitFor("/api/v1/tenant/data-exports/"+r.str("id"), a.admin, "ready")
	cx := b.download("/api/v1/tenant/data-exports/"+r.str("id")+"/download", a.admin)
	require.Len(t, cx.lines(t, "plugins/courses/submissions.jsonl"), 1)
	require.Len(t, cx.lines(t, "plugins/courses/certificates.jsonl"), 1)

	// Bartholomew, erased from A, keeps his account and everything in B.
	r = ok(b.do("POST", "/api/v1/tenant/members/"+bartID+"/erasure", a.admin, nil), 202)
	r = b.waitFor("/api/v1/tenant/erasures/"+r.str("id"), a.admin, "completed")
	require.Contains(t, r.str("outcome", "account"), "kept")
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_probe.notes WHERE tenant_id = $1 AND user_id = $2", a.id, bartID))
	r = ok(b.do("POST", "/api/v1/tenant/members/"+bartID+"/data-export", other.admin, nil), 202)
	b.waitFor("/api/v1/tenant/data-exports/"+r.str("id"), other.admin, "ready")
	bartAfter := b.download("/api/v1/tenant/data-exports/"+r.str("id")+"/download", other.admin)
	require.Equal(t, bartBefore.manifest.Files, bartAfter.manifest.Files, "his data in B is as it was")
	require.Contains(t, bartAfter.text(), bartName)
	require.NotEmpty(t, b.login(bartEmail, other.slug))
	require.Equal(t, 403, b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": bartEmail, "password": password, "tenant": a.slug}).Status)
	b.verifyChains()
	// (Last: a failed login is audited with the address typed.)
	require.Equal(t, 401, b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": zephEmail, "password": password}).Status)
}
