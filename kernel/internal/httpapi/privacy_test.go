package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"

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

// TestErasureResumedByAnAdmin: once its automatic attempts are spent, a
// request whose plugin keeps failing is failed, never completed; an admin
// resumes it through the API once the plugin is fixed, and it completes.
func TestErasureResumedByAnAdmin(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_PRIVACY_MAX_ATTEMPTS", "2"}, fastPrivacy...), pluginBlock{variant: probe})
	a := b.institution("uni")
	b.coolOff(a.admin, 0)
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/notes", a.learner, map[string]any{"body": "A note."}).Status)
	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/fail", a.admin, map[string]any{"fail": true}).Status)

	r := b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	id := r.str("id")
	path := "/api/v1/tenant/erasures/" + id
	r = b.waitFor(path, a.admin, "failed")
	require.Equal(t, "failed", stepStates(r)["plugin:probe"])
	require.Equal(t, "pending", stepStates(r)["kernel:data"])
	require.EqualValues(t, 2, r.get("attempts"))
	events := map[string]int{}
	for _, h := range r.Body["history"].([]any) {
		events[h.(map[string]any)["event"].(string)]++
	}
	require.Equal(t, 2, events["step_failed"], "%s", r.Raw)
	require.Equal(t, 1, events["failed"], "%s", r.Raw)
	require.Zero(t, events["completed"])
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'privacy.erasure.failed'", a.id))
	r = b.do("GET", "/api/v1/tenant/erasures?state=failed", a.admin, nil)
	require.Len(t, r.items(), 1)

	require.Equal(t, 204, b.do("POST", "/api/v1/probe/personal/fail", a.admin, map[string]any{"fail": false}).Status)
	r = b.do("POST", path+"/resume", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(t, 2, r.get("round"))
	r = b.waitFor(path, a.admin, "completed")
	require.Equal(t, "done", stepStates(r)["kernel:data"])
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", a.learnerID))
	requireProblem(t, b.do("POST", path+"/resume", a.admin, nil), 409, "not-resumable")
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'privacy.erasure.resumed'", a.id))
	b.verifyChains()
}

// TestErasureRequests: the cool-off (the institution's setting, 7 days by
// default) and cancelling; who may ask for what; conflicts.
func TestErasureRequests(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, fastPrivacy, pluginBlock{variant: probe})
	a := b.institution("uni")
	other := b.institution("elsewhere")

	// A learner asks for their own erasure: it waits out the cool-off.
	r := b.do("POST", "/api/v1/me/erasure", a.learner, nil, "Idempotency-Key", "erase-me-1")
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	require.Equal(t, "scheduled", r.str("state"))
	require.Equal(t, true, r.get("self"))
	notBefore, err := time.Parse(time.RFC3339Nano, r.str("not_before"))
	require.NoError(t, err)
	require.WithinDuration(t, time.Now().Add(168*time.Hour), notBefore, time.Hour)
	id := r.str("id")
	replay := b.do("POST", "/api/v1/me/erasure", a.learner, nil, "Idempotency-Key", "erase-me-1")
	require.Equal(t, id, replay.str("id"))
	require.Equal(t, "true", replay.Header.Get("Idempotent-Replayed"))
	requireProblem(t, b.do("POST", "/api/v1/me/erasure", a.learner, nil), 409, "erasure-pending")
	requireProblem(t, b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/erasure", a.admin, nil), 409, "erasure-pending")
	require.Equal(t, 200, b.do("GET", "/api/v1/me/erasures/"+id, a.learner, nil).Status)
	require.Len(t, b.do("GET", "/api/v1/me/erasures", a.learner, nil).items(), 1)
	require.Equal(t, 404, b.do("GET", "/api/v1/me/erasures/"+id, a.instructor, nil).Status, "not theirs")
	require.Equal(t, 404, b.do("GET", "/api/v1/tenant/erasures/"+id, other.admin, nil).Status, "not their institution's")
	r = b.do("POST", "/api/v1/me/erasures/"+id+"/cancel", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "cancelled", r.str("state"))
	requireProblem(t, b.do("POST", "/api/v1/me/erasures/"+id+"/cancel", a.learner, nil), 409, "not-cancellable")
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'privacy.erasure.cancelled'", a.id))
	require.Equal(t, 200, b.do("GET", "/api/v1/me", a.learner, nil).Status, "still a member")

	// Who may ask.
	requireProblem(t, b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/erasure", a.instructor, nil), 403, "permission-denied")
	requireProblem(t, b.do("POST", "/api/v1/tenant/members/"+a.learnerID+"/data-export", a.learner, nil), 403, "permission-denied")
	requireProblem(t, b.do("POST", "/api/v1/tenant/members/"+a.adminID+"/erasure", a.admin, nil), 409, "last-admin")
	requireProblem(t, b.do("POST", "/api/v1/tenant/members/00000000-0000-4000-8000-000000000000/erasure", a.admin, nil), 404, "not-found")
	key := b.do("POST", "/api/v1/tenant/apikeys", a.admin, map[string]any{"name": "ci", "permissions": []string{"privacy.export.self"}})
	require.Equal(t, 201, key.Status, "%s", key.Raw)
	requireProblem(t, b.do("POST", "/api/v1/me/data-export", key.str("key"), nil), 403, "user-required")
	requireProblem(t, b.do("PATCH", "/api/v1/tenant", a.admin, map[string]any{"erasure_cool_off_hours": -1}), 422, "invalid-request")

	// An admin's request, cancelled during its cool-off.
	r = b.do("POST", "/api/v1/tenant/members/"+a.instructorID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/tenant/erasures/"+r.str("id")+"/cancel", a.admin, nil)
	require.Equal(t, "cancelled", r.str("state"))
	require.Len(t, b.do("GET", "/api/v1/tenant/erasures?state=cancelled", a.admin, nil).items(), 2)

	// A former member can be erased from what the plugins still hold; their
	// account is not the institution's to anonymise.
	b.coolOff(a.admin, 0)
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/notes", a.instructor, map[string]any{"body": "Left a note."}).Status)
	require.Equal(t, 204, b.do("DELETE", "/api/v1/tenant/members/"+a.instructorID, a.admin, nil).Status)
	// The admin's invitation of them again: its answer, kept sealed for
	// retries, names them, and goes with them; the learner's does not.
	require.Equal(t, 201, b.do("POST", "/api/v1/tenant/invitations", a.admin,
		map[string]any{"email": "instructor@uni.test", "roles": []string{"learner"}}, "Idempotency-Key", "invite-again").Status)
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.idempotency_keys WHERE key = 'invite-again'"))
	r = b.do("POST", "/api/v1/tenant/members/"+a.instructorID+"/erasure", a.admin, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	r = b.waitFor("/api/v1/tenant/erasures/"+r.str("id"), a.admin, "completed")
	require.Equal(t, 0, b.count("SELECT count(*) FROM kernel.idempotency_keys WHERE key = 'invite-again'"), "an answer naming them")
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.idempotency_keys WHERE key = 'erase-me-1'"), "an answer about someone else")
	require.Contains(t, r.str("outcome", "account"), "kept")
	require.Equal(t, 0, b.count("SELECT count(*) FROM plugin_probe.notes WHERE user_id = $1", a.instructorID))
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.users WHERE id = $1 AND email = 'instructor@uni.test'", a.instructorID))
}

// TestDataExportDownloads: an export's archive is downloaded through a
// short-lived signed URL that the kernel serves and audits each time; a
// changed or expired URL is refused; a person sees only their own exports.
func TestDataExportDownloads(t *testing.T) {
	t.Parallel()
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_EXPORT_LINK_TTL", "2s"}, fastPrivacy...), pluginBlock{variant: probe})
	a := b.institution("uni")
	require.Equal(t, 201, b.do("POST", "/api/v1/probe/notes", a.learner, map[string]any{"body": "Mine."}).Status)
	r := b.do("POST", "/api/v1/me/data-export", a.learner, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'privacy.export.requested'", a.id))
	path := "/api/v1/me/data-exports/" + r.str("id")
	require.Equal(t, 404, b.do("GET", path, a.instructor, nil).Status, "not theirs")
	require.Equal(t, 200, b.do("GET", "/api/v1/tenant/data-exports/"+r.str("id"), a.admin, nil).Status)
	b.waitFor(path, a.learner, "ready")
	x := b.download(path+"/download", a.learner)
	require.Len(t, x.lines(t, "plugins/probe/notes.jsonl"), 1)
	b.download(path+"/download", a.learner)
	require.Equal(t, 2, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'privacy.export.link_issued'", a.id))
	require.Equal(t, 2, b.count("SELECT count(*) FROM kernel.audit_log WHERE tenant_id = $1 AND action = 'privacy.export.downloaded'", a.id))

	link := b.do("POST", path+"/download", a.learner, nil).str("url")
	forged := strings.Replace(link, "sig=", "sig=x", 1)
	res, err := http.Get(b.url + forged)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 403, res.StatusCode)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		res, err := http.Get(b.url + link)
		if assert.NoError(c, err) {
			res.Body.Close()
			assert.Equal(c, 403, res.StatusCode, "expired")
		}
	}, patience, 200*time.Millisecond)
	require.Len(t, b.do("GET", "/api/v1/me/data-exports", a.learner, nil).items(), 1)
	require.Empty(t, b.do("GET", "/api/v1/me/data-exports", a.instructor, nil).items())
	require.Len(t, b.do("GET", "/api/v1/tenant/data-exports?user_id="+a.learnerID, a.admin, nil).items(), 1)
	b.verifyChains()
}

// TestPersonalDataCatalogue lists what the kernel and each plugin hold.
func TestPersonalDataCatalogue(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t, pluginBlock{variant: probe})
	a := b.institution("uni")
	r := b.do("GET", "/api/v1/tenant/personal-data", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "kernel", r.str("sources", "0", "source"))
	require.Equal(t, "account", r.str("sources", "0", "classes", "0", "name"))
	require.Equal(t, "probe", r.str("sources", "1", "source"))
	require.Equal(t, "notes", r.str("sources", "1", "classes", "0", "name"))
	require.Equal(t, "notes/{user_id}/", r.str("sources", "1", "classes", "0", "object_prefix"))
}

// TestPersonalDataChecksAtLoad: a plugin whose data classes name a table
// it does not have is refused; columns that look personal and that no
// class describes are warnings in the plugin's status.
func TestPersonalDataChecksAtLoad(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t,
		pluginBlock{variant: variant{name: "ghostly", version: "1.0.0", personal: "missing"}},
		pluginBlock{variant: variant{name: "silent", version: "1.0.0", personal: "none"}})
	op := b.operator()
	var st map[string]map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st = map[string]map[string]any{}
		for _, it := range b.do("GET", "/api/v1/plugins", op, nil).items() {
			st[it["name"].(string)] = it
		}
		assert.Equal(c, "failed", st["ghostly"]["state"])
		assert.Equal(c, "running", st["silent"]["state"])
	}, patience, 100*time.Millisecond)
	require.Contains(t, st["ghostly"]["last_error"], `personal data: data class "ghosts": schema plugin_ghostly has no table "ghosts"`)
	warnings := fmt.Sprint(st["silent"]["warnings"])
	require.Contains(t, warnings, "table notes, column user_id looks personal")
	require.Contains(t, warnings, "table notes, column body looks personal")
}

// TestOffboarding: an operator previews an institution's offboarding (the
// counts per plugin and table, nothing changed), confirms it with the
// institution's slug; nobody signs in to it any more; its export holds
// everything (members, the plugins' rows, objects); then every plugin
// (one disabled for the institution too) and the kernel erase it; the
// institution is gone but its audit chain verifies; another institution is
// untouched.
func TestOffboarding(t *testing.T) {
	t.Parallel()
	notebook := variant{name: "notebook", version: "1.0.0", prefix: "notebook"}
	b, _ := withPluginsEnv(t, fastPrivacy, pluginBlock{variant: probe}, pluginBlock{variant: notebook, disabled: true})
	a := b.institution("leaving")
	other := b.institution("staying")
	op := b.operator()
	const email, name = "perpetua.lindqvist@leaving.test", "Perpetua Lindqvist"
	perpetua, _ := b.joinByInvitation(a, email, name)
	for _, tok := range []string{perpetua, a.learner, other.learner} {
		require.Equal(t, 201, b.do("POST", "/api/v1/probe/notes", tok, map[string]any{"body": "A note."}).Status)
	}
	require.Equal(t, 200, b.do("PUT", "/api/v1/tenant/plugins/notebook", a.admin, map[string]any{"enabled": true}).Status)
	require.Equal(t, 201, b.do("POST", "/api/v1/notebook/notes", perpetua, map[string]any{"body": "By " + name}).Status)
	require.Equal(t, 200, b.do("PUT", "/api/v1/tenant/plugins/notebook", a.admin, map[string]any{"enabled": false}).Status)
	r := b.do("POST", "/api/v1/me/data-export", perpetua, nil)
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	b.waitFor("/api/v1/me/data-exports/"+r.str("id"), perpetua, "ready")

	// The dry run.
	path := "/api/v1/tenants/" + a.id + "/offboarding"
	requireProblem(t, b.do("POST", path+"/preview", a.admin, nil), 403, "operator-required")
	r = b.do("POST", path+"/preview", op, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	counts := map[string]float64{}
	for _, p := range r.Body["parts"].([]any) {
		part := p.(map[string]any)
		require.Empty(t, part["error"], "%s", r.Raw)
		for _, c := range part["counts"].([]any) {
			cm := c.(map[string]any)
			for _, k := range []string{"deleted", "anonymised", "objects"} {
				if v, ok := cm[k].(float64); ok {
					counts[part["source"].(string)+"/"+fmt.Sprint(cm["table"])] += v
				}
			}
		}
	}
	require.EqualValues(t, 2, counts["probe/notes"], "%v", counts)
	require.EqualValues(t, 2, counts["probe/<nil>"], "its objects: %v", counts)
	require.EqualValues(t, 1, counts["notebook/notes"], "%v", counts)
	require.EqualValues(t, 4, counts["kernel/memberships"], "%v", counts)
	require.EqualValues(t, 4, counts["kernel/users"], "%v", counts)
	require.Positive(t, counts["kernel/audit_personal"], "%v", counts)
	require.Equal(t, 2, b.count("SELECT count(*) FROM plugin_probe.notes WHERE tenant_id = $1", a.id), "a dry run changes nothing")

	// The real thing, confirmed.
	requireProblem(t, b.do("POST", path, op, map[string]any{"confirm": "staying"}), 422, "invalid-request")
	r = b.do("POST", path, op, map[string]any{"confirm": "leaving"})
	require.Equal(t, 202, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("POST", path, op, map[string]any{"confirm": "leaving"}), 409, "offboarding-under-way")
	require.Equal(t, 403, b.do("POST", "/api/v1/auth/login", "", map[string]any{"email": "learner@leaving.test", "password": password, "tenant": "leaving"}).Status)
	r = b.waitFor(path, op, "completed")
	require.Equal(t, map[string]string{"export": "done", "plugin:probe": "done", "plugin:notebook": "done", "kernel:data": "done"}, stepStates(r))

	// Its export holds everything.
	x := b.download(path+"/export/download", op)
	require.Contains(t, string(x.files["kernel/members.jsonl"]), email)
	require.Len(t, x.lines(t, "plugins/probe/notes.jsonl"), 2)
	require.Len(t, x.lines(t, "plugins/notebook/notes.jsonl"), 1)
	objects := 0
	for f := range x.files {
		if strings.HasPrefix(f, "objects/probe/notes/") {
			objects++
		}
	}
	require.Equal(t, 2, objects)
	require.NotEmpty(t, x.lines(t, "kernel/audit.jsonl"))

	// Then nothing of it is left but that export, kept for the operator.
	require.Equal(t, 404, b.do("GET", "/api/v1/tenants/"+a.id, op, nil).Status)
	for _, trace := range b.traces(email, name) {
		require.Contains(t, trace, "/kernel/offboarding/"+a.id+"/", "only the export holds her")
	}
	rows, err := b.pool.Query(context.Background(), `SELECT table_schema, table_name FROM information_schema.columns
		WHERE column_name = 'tenant_id' AND table_schema IN ('kernel', 'plugin_probe', 'plugin_notebook') AND data_type = 'uuid'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var s, n string
		err := r.Scan(&s, &n)
		return pgx.Identifier{s, n}.Sanitize(), err
	})
	require.NoError(t, err)
	kept := map[string]bool{`"kernel"."audit_log"`: true, `"kernel"."privacy_requests"`: true, `"kernel"."data_exports"`: true}
	for _, table := range tables {
		n := b.count("SELECT count(*) FROM "+table+" WHERE tenant_id = $1", a.id)
		if kept[table] {
			continue
		}
		require.Zero(t, n, table)
	}
	require.Equal(t, 1, b.count("SELECT count(*) FROM kernel.data_exports WHERE tenant_id = $1", a.id), "only the offboarding's export")
	require.Equal(t, 0, b.count("SELECT count(*) FROM kernel.users WHERE email LIKE '%@leaving.test'"), "its members' accounts are anonymised")
	b.verifyChains()

	// The other institution is untouched.
	require.Equal(t, 1, b.count("SELECT count(*) FROM plugin_probe.notes WHERE tenant_id = $1", other.id))
	require.NotEmpty(t, b.login("learner@staying.test", "staying"))
}
