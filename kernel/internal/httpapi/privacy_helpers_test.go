package httpapi_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/audit"
)

// fastPrivacy retries a failed erasure step or export after 100 ms,
// doubling up to a second.
var fastPrivacy = []string{"EDULURE_PRIVACY_BACKOFF", "100ms", "EDULURE_PRIVACY_BACKOFF_MAX", "1s"}

// patience bounds waits on background work: two cores shared with other
// test binaries make anything slow; nothing waits for a set time.
const patience = 90 * time.Second

// coolOff sets the institution's erasure cool-off.
func (b *testBundle) coolOff(admin string, hours int) {
	b.t.Helper()
	r := b.do("PATCH", "/api/v1/tenant", admin, map[string]any{"erasure_cool_off_hours": hours})
	require.Equal(b.t, 200, r.Status, "%s", r.Raw)
	require.EqualValues(b.t, hours, r.get("erasure_cool_off_hours"))
}

// joinByInvitation makes a person with a distinctive address and name join
// inst by invitation (the audit log and events then name them), and
// returns their token and ID.
func (b *testBundle) joinByInvitation(inst institution, email, name string) (token, id string) {
	b.t.Helper()
	r := b.do("POST", "/api/v1/tenant/invitations", inst.admin, map[string]any{"email": email, "roles": []string{"learner"}})
	require.Equal(b.t, 201, r.Status, "%s", r.Raw)
	r = b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": email, "password": password, "display_name": name, "invitation_token": r.str("token")})
	require.Equal(b.t, 201, r.Status, "%s", r.Raw)
	return b.login(email, inst.slug), r.str("user", "id")
}

// waitFor polls path until its state is one of states, and returns it.
func (b *testBundle) waitFor(path, token string, states ...string) response {
	b.t.Helper()
	var last response
	require.EventuallyWithT(b.t, func(c *assert.CollectT) {
		last = b.do("GET", path, token, nil)
		assert.Contains(c, states, last.str("state"), "%s", last.Raw)
	}, patience, 100*time.Millisecond)
	return last
}

// archive is a downloaded export bundle, unzipped.
type archive struct {
	files    map[string][]byte
	manifest struct {
		Format   string `json:"format"`
		UserID   string `json:"user_id"`
		TenantID string `json:"tenant_id"`
		Parts    []struct {
			Source string `json:"source"`
			Files  int    `json:"files"`
			Rows   int    `json:"rows"`
		} `json:"parts"`
		Files []struct {
			Path   string `json:"path"`
			Source string `json:"source"`
			Rows   int    `json:"rows"`
			Bytes  int    `json:"bytes"`
			SHA256 string `json:"sha256"`
		} `json:"files"`
	}
}

// download asks for a signed URL with linkPath, fetches the archive
// through it without credentials, and checks it against its manifest.
func (b *testBundle) download(linkPath, token string) *archive {
	b.t.Helper()
	r := b.do("POST", linkPath, token, nil)
	require.Equal(b.t, 200, r.Status, "%s", r.Raw)
	url := r.str("url")
	require.True(b.t, strings.HasPrefix(url, "/api/v1/blobs/kernel/"), url)
	res, err := http.Get(b.url + url)
	require.NoError(b.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.t, err)
	require.Equal(b.t, 200, res.StatusCode, "%s", body)
	require.Equal(b.t, "application/zip", res.Header.Get("Content-Type"))
	require.Contains(b.t, res.Header.Get("Content-Disposition"), "attachment")
	require.EqualValues(b.t, r.get("bytes"), len(body))
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	require.NoError(b.t, err)
	a := &archive{files: map[string][]byte{}}
	for _, f := range zr.File {
		rc, err := f.Open()
		require.NoError(b.t, err)
		content, err := io.ReadAll(rc)
		require.NoError(b.t, err)
		rc.Close()
		a.files[f.Name] = content
	}
	require.NoError(b.t, json.Unmarshal(a.files["manifest.json"], &a.manifest), "%s", a.files["manifest.json"])
	require.Equal(b.t, "edulure-export-v1", a.manifest.Format)
	require.Len(b.t, a.manifest.Files, len(a.files)-1, "every file but the manifest is listed")
	for _, f := range a.manifest.Files {
		content, ok := a.files[f.Path]
		require.True(b.t, ok, "listed but missing: %s", f.Path)
		require.Equal(b.t, f.Bytes, len(content), f.Path)
		require.Equal(b.t, f.SHA256, sha256hex(content), f.Path)
		if strings.HasSuffix(f.Path, ".jsonl") && !strings.Contains(f.Path, "objects/") {
			require.Equal(b.t, f.Rows, bytes.Count(content, []byte("\n")), f.Path)
		}
	}
	return a
}

// lines are a JSON lines file's objects.
func (a *archive) lines(t *testing.T, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range bytes.Split(a.files[path], []byte("\n")) {
		if len(l) == 0 {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal(l, &m), "%s: %s", path, l)
		out = append(out, m)
	}
	return out
}

// text is every file of the archive but its manifest.
func (a *archive) text() string {
	var sb strings.Builder
	for name, content := range a.files {
		if name != "manifest.json" {
			sb.Write(content)
		}
	}
	return sb.String()
}

// nonEmpty lists the files that hold something.
func (a *archive) nonEmpty() []string {
	var out []string
	for name, content := range a.files {
		if name != "manifest.json" && len(content) > 0 {
			out = append(out, name)
		}
	}
	return out
}

// traces scans the whole database, every text, JSON, array-of-text and
// bytea column of every table of every schema (the kernel's, River's, each
// plugin's), and every object of the bucket (zip archives unpacked), for
// the needles, case-insensitively. It returns where it found them.
func (b *testBundle) traces(needles ...string) []string {
	b.t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `
		SELECT n.nspname, c.relname, a.attname, t.typname
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_type t ON t.oid = a.atttypid
		WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND a.attnum > 0 AND NOT a.attisdropped
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
		  AND t.typname IN ('text', 'varchar', 'bpchar', 'json', 'jsonb', '_text', '_varchar', 'bytea', 'name')
		ORDER BY 1, 2, 3`)
	require.NoError(b.t, err)
	type column struct{ Schema, Table, Column, Typ string }
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[column])
	require.NoError(b.t, err)
	require.Greater(b.t, len(cols), 50, "the scan reads the whole database")
	var found []string
	for _, c := range cols {
		expr := pgx.Identifier{c.Column}.Sanitize() + "::text"
		if c.Typ == "bytea" {
			expr = "encode(" + pgx.Identifier{c.Column}.Sanitize() + ", 'escape')"
		}
		for _, n := range needles {
			var hits int
			q := fmt.Sprintf("SELECT count(*) FROM %s WHERE strpos(lower(%s), lower($1)) > 0", pgx.Identifier{c.Schema, c.Table}.Sanitize(), expr)
			require.NoError(b.t, b.pool.QueryRow(ctx, q, n).Scan(&hits), q)
			if hits > 0 {
				found = append(found, fmt.Sprintf("%s.%s.%s: %d row(s) hold %q", c.Schema, c.Table, c.Column, hits, n))
			}
		}
	}
	dir := strings.TrimPrefix(b.kernel.Config.BlobURL, "file://")
	require.NotEmpty(b.t, dir)
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		texts := map[string][]byte{path: content}
		if zr, err := zip.NewReader(bytes.NewReader(content), int64(len(content))); err == nil {
			for _, f := range zr.File {
				rc, err := f.Open()
				if err != nil {
					return err
				}
				inner, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					return err
				}
				texts[path+"!"+f.Name] = inner
			}
		}
		for where, text := range texts {
			for _, n := range needles {
				if bytes.Contains(bytes.ToLower(text), bytes.ToLower([]byte(n))) || strings.Contains(strings.ToLower(where), strings.ToLower(n)) {
					found = append(found, fmt.Sprintf("object %s holds %q", strings.TrimPrefix(where, dir), n))
				}
			}
		}
		return nil
	})
	require.NoError(b.t, err)
	return found
}

// verifyChains verifies every audit chain, as `edulure audit-verify` does.
func (b *testBundle) verifyChains() {
	b.t.Helper()
	ctx := context.Background()
	rows, err := b.pool.Query(ctx, `SELECT DISTINCT coalesce(tenant_id::text, '') FROM kernel.audit_log`)
	require.NoError(b.t, err)
	chains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(b.t, err)
	for _, c := range chains {
		res, err := audit.Verify(ctx, b.pool, c)
		require.NoError(b.t, err)
		require.True(b.t, res.Valid, "chain %q: %+v", c, res)
	}
}

// stepStates maps an erasure's steps to their states.
func stepStates(r response) map[string]string {
	out := map[string]string{}
	steps, _ := r.Body["steps"].([]any)
	for _, s := range steps {
		m := s.(map[string]any)
		out[m["step"].(string)] = m["state"].(string)
	}
	return out
}

// stepCounts sums what each step changed.
func stepCounts(r response) map[string]float64 {
	out := map[string]float64{}
	steps, _ := r.Body["steps"].([]any)
	for _, s := range steps {
		m := s.(map[string]any)
		counts, _ := m["counts"].([]any)
		total := 0.0
		for _, c := range counts {
			for _, k := range []string{"deleted", "anonymised", "references", "objects"} {
				v, _ := c.(map[string]any)[k].(float64)
				total += v
			}
		}
		out[m["step"].(string)] = total
	}
	return out
}

func sha256hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// course is a published course with two lessons, a quiz and a graded
// assignment.
type course struct {
	id, quiz, assignment, criterion, topLevel string
	lessons                                   []string
}

// publishCourse has inst's instructor author and publish a course.
func (b *testBundle) publishCourse(inst institution) course {
	b.t.Helper()
	ok := func(r response, status int) response {
		b.t.Helper()
		require.Equal(b.t, status, r.Status, "%s", r.Raw)
		return r
	}
	var c course
	c.id = ok(b.do("POST", "/api/v1/courses", inst.instructor, map[string]any{"title": "Practical Statistics", "summary": "Numbers you can trust."}), 201).str("id")
	module := ok(b.do("POST", "/api/v1/courses/"+c.id+"/modules", inst.instructor, map[string]any{"title": "Basics"}), 201).str("id")
	for i, title := range []string{"Means", "Spread"} {
		c.lessons = append(c.lessons, ok(b.do("POST", "/api/v1/courses/"+c.id+"/modules/"+module+"/lessons", inst.instructor, map[string]any{
			"title": title, "body": fmt.Sprintf("# %s\n\nLesson %d.", title, i+1), "estimated_minutes": 10,
		}), 201).str("id"))
	}
	c.quiz = ok(b.do("POST", "/api/v1/courses/"+c.id+"/quizzes", inst.instructor, map[string]any{
		"title": "Check", "lesson_id": c.lessons[0], "pass_mark": 50,
		"questions": []map[string]any{
			{"id": "q1", "prompt": "Mean of 1, 2, 3?", "kind": "single", "options": []map[string]any{{"id": "a", "text": "2"}, {"id": "b", "text": "3"}}, "correct": []string{"a"}},
		},
	}), 201).str("id")
	rubric := ok(b.do("POST", "/api/v1/courses/"+c.id+"/rubrics", inst.instructor, map[string]any{
		"title": "Report", "criteria": []map[string]any{
			{"title": "Method", "levels": []map[string]any{{"title": "Weak", "points": 0}, {"title": "Sound", "points": 10}}},
		},
	}), 201)
	c.criterion, c.topLevel = rubric.str("criteria", "0", "id"), rubric.str("criteria", "0", "levels", "1", "id")
	c.assignment = ok(b.do("POST", "/api/v1/courses/"+c.id+"/assignments", inst.instructor, map[string]any{
		"title": "A small report", "rubric_id": rubric.str("id"), "due_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339),
	}), 201).str("id")
	ok(b.do("POST", "/api/v1/courses/"+c.id+"/publish", inst.instructor, map[string]any{"note": "First run"}), 201)
	return c
}

// takeCourse has a learner enrol, complete the lessons, pass the quiz and
// submit (writing text), has the instructor grade the submission, and
// waits for the learner's certificate and points.
func (b *testBundle) takeCourse(inst institution, c course, learner, learnerID, text string) {
	b.t.Helper()
	ok := func(r response, status int) response {
		b.t.Helper()
		require.Equal(b.t, status, r.Status, "%s", r.Raw)
		return r
	}
	eid := ok(b.do("POST", "/api/v1/enrolments", learner, map[string]any{"course_id": c.id}), 201).str("id")
	for _, l := range c.lessons {
		ok(b.do("POST", "/api/v1/enrolments/"+eid+"/lessons/"+l+"/complete", learner, map[string]any{"time_spent_seconds": 300}), 200)
	}
	ok(b.do("POST", "/api/v1/quizzes/"+c.quiz+"/attempts", learner, map[string]any{"answers": map[string]any{"q1": []string{"a"}}}), 201)
	sub := ok(b.do("POST", "/api/v1/assignments/"+c.assignment+"/submissions", learner, map[string]any{"body": text}), 201).str("id")
	ok(b.do("POST", "/api/v1/submissions/"+sub+"/grade", inst.instructor, map[string]any{"levels": map[string]string{c.criterion: c.topLevel}, "feedback": "Sound method."}), 200)
	require.EventuallyWithT(b.t, func(ct *assert.CollectT) {
		assert.Len(ct, b.do("GET", "/api/v1/certificates", learner, nil).items(), 1)
		r := b.do("GET", "/api/v1/leaderboard/users/"+learnerID, learner, nil)
		assert.Equal(ct, 200, r.Status)
		assert.EqualValues(ct, 20, r.get("points"), "%s", r.Raw)
	}, patience, 100*time.Millisecond)
}
