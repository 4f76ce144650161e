package httpapi_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	_ "gocloud.dev/blob/s3blob"
)

// The telemetry plugin as it ships (plugins/telemetry, its own module).
var telemetryPlugin = variant{name: "telemetry", version: "0.2.0", module: "plugins/telemetry"}

// TestTelemetryEndToEnd walks the telemetry plugin's path through the
// kernel with the real binaries of courses and telemetry: an admin
// publishes a consent policy and a learner grants it; the learner sends a
// batch of xAPI statements over HTTP (one of them refused, one a replay);
// a lesson the learner completes in courses becomes a statement through
// the event relay; an export lands in the kernel's object storage (the
// file driver) with a manifest that checks out; the plugin's metrics are
// on /metrics; and another institution sees none of it.
func TestTelemetryEndToEnd(t *testing.T) {
	t.Parallel()
	blobs := t.TempDir()
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_BLOB_URL", "file://" + blobs}, fastEvents...),
		pluginBlock{variant: coursesPlugin}, pluginBlock{variant: telemetryPlugin})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}

	// Consent: without it a statement is refused with its reason.
	statement := func(user string, ts time.Time) map[string]any {
		return map[string]any{
			"id":        uuid.NewString(),
			"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": "https://edulure.dev", "name": user}},
			"verb":      map[string]any{"id": "http://adlnet.gov/expapi/verbs/experienced", "display": map[string]any{"en-US": "experienced"}},
			"object":    map[string]any{"objectType": "Activity", "id": "https://edulure.dev/xapi/activities/videos/intro"},
			"timestamp": ts.UTC().Format(time.RFC3339Nano),
		}
	}
	r := ok(b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": []any{statement(a.learnerID, time.Now())}}), 200)
	require.Equal(t, "no_policy", r.str("results", "0", "reason"), "%s", r.Raw)
	requireProblem(t, b.do("POST", "/api/v1/telemetry/policies", a.learner, map[string]any{"purpose": "analytics", "summary": "x"}), 403, "permission-denied")
	version := ok(b.do("POST", "/api/v1/telemetry/policies", a.admin, map[string]any{"purpose": "analytics", "summary": "We use your learning activity to improve courses."}), 201).get("version")
	r = ok(b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": []any{statement(a.learnerID, time.Now())}}), 200)
	require.Equal(t, "no_consent", r.str("results", "0", "reason"), "%s", r.Raw)
	granted := ok(b.do("POST", "/api/v1/telemetry/consents", a.learner, map[string]any{"purpose": "analytics", "policy_version": version, "granted": true}), 201)
	decidedAt, err := time.Parse(time.RFC3339Nano, granted.str("decided_at"))
	require.NoError(t, err)

	// A batch over HTTP: stored, refused (someone else's), and a replay.
	first := statement(a.learnerID, decidedAt.Add(time.Millisecond))
	batch := []any{first, statement(a.learnerID, decidedAt.Add(2*time.Millisecond)), statement(a.instructorID, decidedAt.Add(time.Millisecond))}
	r = ok(b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": batch}), 200)
	require.EqualValues(t, 2, r.get("stored"), "%s", r.Raw)
	require.Equal(t, "actor_not_caller", r.str("results", "2", "reason"))
	r = ok(b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": []any{first}}), 200)
	require.Equal(t, "duplicate", r.str("results", "0", "status"))
	// The kernel checks the body's shape first.
	requireProblem(t, b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": []any{}}), 422, "invalid-request")
	tooMany := make([]any, 1001)
	for i := range tooMany {
		tooMany[i] = map[string]any{}
	}
	requireProblem(t, b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": tooMany}), 422, "invalid-request")
	withNUL := statement(a.learnerID, decidedAt.Add(3*time.Millisecond))
	withNUL["object"] = map[string]any{"objectType": "Activity", "id": "https://edulure.dev/x\u0000"}
	r = b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": []any{withNUL}})
	require.Equal(t, 422, r.Status, "%s", r.Raw)
	require.Equal(t, "application/problem+json", r.Header.Get("Content-Type"))
	require.Contains(t, string(r.Raw), "NUL", "the problem names it")
	requireProblem(t, b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": []any{first}, "source": "lms"}), 403, "not_allowed")

	// A lesson completed in courses becomes a statement.
	course := ok(b.do("POST", "/api/v1/courses", a.instructor, map[string]any{"title": "Telemetry 101"}), 201).str("id")
	module := ok(b.do("POST", "/api/v1/courses/"+course+"/modules", a.instructor, map[string]any{"title": "Basics"}), 201).str("id")
	lesson := ok(b.do("POST", "/api/v1/courses/"+course+"/modules/"+module+"/lessons", a.instructor, map[string]any{"title": "Signals", "body": "# Signals"}), 201).str("id")
	ok(b.do("POST", "/api/v1/courses/"+course+"/publish", a.instructor, map[string]any{}), 201)
	enrolment := ok(b.do("POST", "/api/v1/enrolments", a.learner, map[string]any{"course_id": course}), 201).str("id")
	ok(b.do("POST", "/api/v1/enrolments/"+enrolment+"/lessons/"+lesson+"/complete", a.learner, map[string]any{"time_spent_seconds": 420}), 200)
	// The course has one lesson, so completing it completes the course:
	// two statements from courses, beside the two the learner sent.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		items := b.do("GET", "/api/v1/telemetry/events", a.learner, nil).items()
		if !assert.Len(c, items, 4) {
			return
		}
		platform := map[string]string{}
		for _, it := range items {
			if it["source"] == "platform:courses" {
				platform[it["object_id"].(string)] = it["verb"].(string)
			}
		}
		assert.Equal(c, map[string]string{
			"https://edulure.dev/xapi/activities/lessons/" + lesson: "http://adlnet.gov/expapi/verbs/completed",
			"https://edulure.dev/xapi/activities/courses/" + course: "http://adlnet.gov/expapi/verbs/completed",
		}, platform)
	}, eventually, 50*time.Millisecond)

	// Rollups and aggregates, through the kernel's job runner.
	ok(b.do("POST", "/api/v1/jobs/telemetry/rollup/runs", a.admin, map[string]any{}), 202)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		r := b.do("GET", "/api/v1/telemetry/aggregates/courses", a.admin, nil)
		if assert.Len(c, r.items(), 1) {
			assert.EqualValues(c, 1, r.items()[0]["lesson_completions"])
			assert.EqualValues(c, 1, r.items()[0]["course_completions"])
			assert.EqualValues(c, 420, r.items()[0]["time_spent_seconds"])
		}
	}, eventually, 50*time.Millisecond)
	requireProblem(t, b.do("GET", "/api/v1/telemetry/aggregates/courses", a.learner, nil), 403, "permission-denied")

	// Freshness: the newest statement, the delays of the last hour, no
	// export yet; analysts only.
	r = ok(b.do("GET", "/api/v1/telemetry/freshness", a.admin, nil), 200)
	require.EqualValues(t, 4, r.get("statements_last_hour"), "%s", r.Raw)
	require.NotNil(t, r.get("lag_seconds"))
	require.NotNil(t, r.get("delay_p95_seconds"))
	require.Nil(t, r.get("last_exported_hour"))
	requireProblem(t, b.do("GET", "/api/v1/telemetry/freshness", a.learner, nil), 403, "permission-denied")

	// An export lands in storage. The export takes complete hours only:
	// the statements are moved back an hour behind the plugin's back, as
	// if they had arrived then.
	hour := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	_, err = b.pool.Exec(context.Background(), `UPDATE plugin_telemetry.statements SET stored_at = $2::timestamptz + (stored_at - date_trunc('hour', stored_at)) WHERE tenant_id = $1`, a.id, hour)
	require.NoError(t, err)
	r = ok(b.do("POST", "/api/v1/telemetry/exports", a.admin, map[string]any{"hour": hour.Format(time.RFC3339)}), 200)
	require.Equal(t, "written", r.str("exports", "0", "outcome"), "%s", r.Raw)
	require.EqualValues(t, 4, r.get("exports", "0", "statements"))
	manifestKey := r.str("exports", "0", "manifest_key")
	require.Equal(t, a.id+"/dt="+hour.Format("2006-01-02")+"/hour="+hour.Format("15")+"/manifest.json", manifestKey)
	read := func(key string) []byte {
		var found []byte
		require.NoError(t, filepath.WalkDir(blobs, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.HasSuffix(filepath.ToSlash(path), "/tenants/"+a.id+"/"+key) {
				found, err = os.ReadFile(path)
			}
			return err
		}))
		require.NotNil(t, found, "no object %s under %s", key, blobs)
		return found
	}
	var manifest struct {
		Statements int64 `json:"statements"`
		SHA256     string
		Parts      []struct {
			Key    string `json:"key"`
			Rows   int    `json:"rows"`
			SHA256 string `json:"sha256"`
		} `json:"parts"`
		ConsentPolicies []map[string]any `json:"consent_policies"`
	}
	require.NoError(t, json.Unmarshal(read(manifestKey), &manifest))
	require.Len(t, manifest.Parts, 1)
	part := read(manifest.Parts[0].Key)
	sum := sha256.Sum256(part)
	require.Equal(t, manifest.Parts[0].SHA256, hex.EncodeToString(sum[:]))
	require.Equal(t, []map[string]any{{"purpose": "analytics", "version": float64(1), "statements": float64(4)}}, manifest.ConsentPolicies)
	zr, err := gzip.NewReader(bytes.NewReader(part))
	require.NoError(t, err)
	lines := 0
	for sc := bufio.NewScanner(zr); sc.Scan(); lines++ {
		require.Contains(t, sc.Text(), `"user_id":"`+a.learnerID+`"`)
	}
	require.Equal(t, 4, lines)
	// Again: byte-identical, nothing written.
	r = ok(b.do("POST", "/api/v1/telemetry/exports", a.admin, map[string]any{"hour": hour.Format(time.RFC3339)}), 200)
	require.Equal(t, "unchanged", r.str("exports", "0", "outcome"))

	r = ok(b.do("GET", "/api/v1/telemetry/freshness", a.admin, nil), 200)
	require.Equal(t, hour.Format(time.RFC3339), r.str("last_exported_hour"), "%s", r.Raw)

	// The plugin's metrics are on the kernel's /metrics.
	require.True(t, hasSeries(b.scrape(), `telemetry_statements_total{outcome="stored",plugin="telemetry",reason=""}`), "telemetry metrics on /metrics")

	// Another institution sees none of it.
	require.Empty(t, ok(b.do("GET", "/api/v1/telemetry/events", other.learner, nil), 200).items())
	require.Empty(t, ok(b.do("GET", "/api/v1/telemetry/aggregates/courses", other.admin, nil), 200).items())
	require.Empty(t, ok(b.do("GET", "/api/v1/telemetry/exports", other.admin, nil), 200).items())
	require.Empty(t, ok(b.do("GET", "/api/v1/telemetry/policies", other.learner, nil), 200).get("items"))
}

// TestTelemetryExportS3 exports through the kernel's S3 driver (an S3
// server in this process, as objectstore's tests use): the objects land
// under the institution's prefix, the manifest checks out against them and
// a re-run writes nothing. Not parallel: the AWS SDK reads its credentials
// from the environment.
func TestTelemetryExportS3(t *testing.T) {
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket("warehouse"))
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	url := "s3://warehouse?endpoint=" + srv.URL + "&region=us-east-1&use_path_style=true"
	b, _ := withPluginsEnv(t, append([]string{"EDULURE_BLOB_URL", url}, fastEvents...), pluginBlock{variant: telemetryPlugin})
	a := b.institution("uni")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	version := ok(b.do("POST", "/api/v1/telemetry/policies", a.admin, map[string]any{"purpose": "analytics", "summary": "Improving courses."}), 201).get("version")
	granted := ok(b.do("POST", "/api/v1/telemetry/consents", a.learner, map[string]any{"purpose": "analytics", "policy_version": version, "granted": true}), 201)
	decidedAt, err := time.Parse(time.RFC3339Nano, granted.str("decided_at"))
	require.NoError(t, err)
	var batch []any
	for i := range 3 {
		batch = append(batch, map[string]any{
			"id":        uuid.NewString(),
			"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": "https://edulure.dev", "name": a.learnerID}},
			"verb":      map[string]any{"id": "http://adlnet.gov/expapi/verbs/experienced"},
			"object":    map[string]any{"objectType": "Activity", "id": "https://edulure.dev/xapi/activities/videos/v" + string(rune('a'+i))},
			"timestamp": decidedAt.Add(time.Duration(i+1) * time.Millisecond).UTC().Format(time.RFC3339Nano),
		})
	}
	require.EqualValues(t, 3, ok(b.do("POST", "/api/v1/telemetry/events", a.learner, map[string]any{"statements": batch}), 200).get("stored"))
	hour := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Hour)
	_, err = b.pool.Exec(context.Background(), `UPDATE plugin_telemetry.statements SET stored_at = $2::timestamptz + (stored_at - date_trunc('hour', stored_at)) WHERE tenant_id = $1`, a.id, hour)
	require.NoError(t, err)
	r := ok(b.do("POST", "/api/v1/telemetry/exports", a.admin, map[string]any{"hour": hour.Format(time.RFC3339)}), 200)
	require.Equal(t, "written", r.str("exports", "0", "outcome"), "%s", r.Raw)
	manifestKey := r.str("exports", "0", "manifest_key")

	// Read back from the S3 server itself, not through the kernel.
	bucket, err := blob.OpenBucket(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(func() { bucket.Close() })
	objects := map[string][]byte{}
	it := bucket.List(nil)
	for {
		o, err := it.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body, err := bucket.ReadAll(context.Background(), o.Key)
		require.NoError(t, err)
		objects[o.Key] = body
	}
	find := func(key string) []byte {
		t.Helper()
		for k, body := range objects {
			if strings.HasSuffix(k, "/tenants/"+a.id+"/"+key) {
				return body
			}
		}
		require.Failf(t, "no object", "%s among %d objects", key, len(objects))
		return nil
	}
	var manifest struct {
		Statements int64 `json:"statements"`
		Parts      []struct {
			Key    string `json:"key"`
			Rows   int    `json:"rows"`
			SHA256 string `json:"sha256"`
		} `json:"parts"`
	}
	require.NoError(t, json.Unmarshal(find(manifestKey), &manifest))
	require.EqualValues(t, 3, manifest.Statements)
	require.Len(t, manifest.Parts, 1)
	part := find(manifest.Parts[0].Key)
	sum := sha256.Sum256(part)
	require.Equal(t, manifest.Parts[0].SHA256, hex.EncodeToString(sum[:]))
	zr, err := gzip.NewReader(bytes.NewReader(part))
	require.NoError(t, err)
	lines, err := io.ReadAll(zr)
	require.NoError(t, err)
	require.Equal(t, 3, strings.Count(string(lines), "\n"))
	require.Len(t, objects, 2, "the part and the manifest, nothing else")

	// Again: the same bytes are there; nothing is written.
	r = ok(b.do("POST", "/api/v1/telemetry/exports", a.admin, map[string]any{"hour": hour.Format(time.RFC3339)}), 200)
	require.Equal(t, "unchanged", r.str("exports", "0", "outcome"))
}

// The platform's own events through the kernel: a quiz attempt in courses
// and a post and a reaction in messaging become the learner's statements
// (the institution's default grants analytics to those who decided
// nothing).
func TestTelemetryRecordsCoursesAndMessaging(t *testing.T) {
	t.Parallel()
	catcher := startSMTPCatcher(t)
	cfg := fmt.Sprintf(`{ smtp_host = %q, smtp_port = %d, smtp_security = "none" }`, catcher.host, catcher.port)
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: coursesPlugin}, pluginBlock{variant: messagingPlugin, config: cfg},
		pluginBlock{variant: telemetryPlugin, config: `{ default_granted = ["analytics"] }`})
	a := b.institution("uni")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	ok(b.do("POST", "/api/v1/telemetry/policies", a.admin, map[string]any{"purpose": "analytics", "summary": "Learning activity improves the courses."}), 201)

	course := ok(b.do("POST", "/api/v1/courses", a.instructor, map[string]any{"title": "Signals"}), 201).str("id")
	module := ok(b.do("POST", "/api/v1/courses/"+course+"/modules", a.instructor, map[string]any{"title": "Basics"}), 201).str("id")
	lesson := ok(b.do("POST", "/api/v1/courses/"+course+"/modules/"+module+"/lessons", a.instructor, map[string]any{"title": "Noise", "body": "# Noise"}), 201).str("id")
	quiz := ok(b.do("POST", "/api/v1/courses/"+course+"/quizzes", a.instructor, map[string]any{
		"title": "Check", "lesson_id": lesson, "pass_mark": 50,
		"questions": []map[string]any{{"id": "q1", "prompt": "Is noise a signal?", "kind": "single",
			"options": []map[string]any{{"id": "a", "text": "No"}, {"id": "b", "text": "Yes"}}, "correct": []string{"a"}}},
	}), 201).str("id")
	ok(b.do("POST", "/api/v1/courses/"+course+"/publish", a.instructor, map[string]any{}), 201)
	ok(b.do("POST", "/api/v1/enrolments", a.learner, map[string]any{"course_id": course}), 201)
	ok(b.do("POST", "/api/v1/quizzes/"+quiz+"/attempts", a.learner, map[string]any{"answers": map[string]any{"q1": []string{"a"}}}), 201)

	var space string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, s := range b.do("GET", "/api/v1/spaces?kind=course", a.learner, nil).items() {
			if s["course_id"] == course {
				space = s["id"].(string)
			}
		}
		assert.NotEmpty(c, space, "the course's space follows the enrolment")
	}, eventually, 20*time.Millisecond)
	post := ok(b.do("POST", "/api/v1/spaces/"+space+"/posts", a.learner, map[string]any{"body": "Is all noise white?", "format": "text"}), 201).str("id")
	ok(b.do("PUT", "/api/v1/posts/"+post+"/reactions/👍", a.learner, nil), 200)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		got := map[string]string{}
		for _, it := range b.do("GET", "/api/v1/telemetry/events", a.learner, nil).items() {
			got[it["source"].(string)+" "+it["verb"].(string)] = it["object_id"].(string)
		}
		assert.Equal(c, map[string]string{
			"platform:courses http://adlnet.gov/expapi/verbs/passed":     "https://edulure.dev/xapi/activities/quizzes/" + quiz,
			"platform:messaging http://activitystrea.ms/schema/1.0/post": "https://edulure.dev/xapi/activities/posts/" + post,
			"platform:messaging http://activitystrea.ms/schema/1.0/like": "https://edulure.dev/xapi/activities/posts/" + post,
		}, got)
	}, eventually, 50*time.Millisecond)
}
