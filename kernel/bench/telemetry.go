package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The telemetry plugin's rows (plugins/telemetry, issue "Telemetry plugin").
//
// telemetry.ingest: statements per second a learner's client gets stored
// through the kernel, in batches of 500 xAPI statements over HTTP
// (POST /api/v1/telemetry/events: the kernel's checks, gRPC to the plugin,
// the plugin's statement checks, consent under its locks, COPY into its
// staging table and the INSERT ... ON CONFLICT DO NOTHING merge), against
// COPY of the same kind of rows straight into the plugin's statements
// table from this process, in batches of the same size on as many
// connections: the floor any ingestion path has to stand on.
//
// telemetry.aggregate_courses: the p50 latency of the course aggregate
// through the kernel, read from the hourly rollups, at telemetryEvents
// statements over 30 days (seeded straight into the table, rolled up by
// the plugin's rollup job run through the kernel), against the same
// figures computed from the statements themselves by one query.

const (
	telemetryBatch = 500 // statements per request, as the issue measures
	telemetryConns = 4   // requests (and baseline COPYs) in flight
)

// telemetryEvents is the number of statements of the aggregate row (the
// issue's 10 million; -telemetry-events sets it).
var telemetryEvents = 10_000_000

func (e *env) telemetryRows(ctx context.Context) ([]Row, error) {
	if e.telemetry == nil {
		e.printf("  the telemetry plugin is not built: telemetry rows skipped")
		return nil, nil
	}
	version, err := manifestVersion(e.telemetry.path)
	if err != nil {
		return nil, err
	}
	// Everyone counts as consenting to analytics (the institution's
	// default, opt-out): the consent judge still runs for every statement.
	tel := pluginEntry{name: "telemetry", bin: *e.telemetry, version: version, config: `{ default_granted = ["analytics"] }`}
	if err := e.reload(append(e.basePlugins(), tel)...); err != nil {
		return nil, fmt.Errorf("loading the telemetry plugin: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck
	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := e.call("GET", "/api/v1/me", e.tokens["learner"], nil, 200, &me); err != nil {
		return nil, err
	}
	learner := me.User.ID
	// The institution's analytics policy, which the default grant is under.
	policy := map[string]any{"purpose": "analytics", "summary": "Learning activity improves the courses."}
	if err := e.call("POST", "/api/v1/telemetry/policies", e.tokens["admin"], policy, 201, nil); err != nil {
		return nil, err
	}

	ingest, err := e.telemetryIngestRow(ctx, learner)
	if err != nil {
		return nil, err
	}
	agg, err := e.telemetryAggregateRows(ctx)
	if err != nil {
		return nil, err
	}
	return append([]Row{ingest}, agg...), nil
}

// statementJSON is one xAPI statement of the learner, n seconds ago.
func statementJSON(learner string, at time.Time, i int) map[string]any {
	return map[string]any{
		"id":        uuid.NewString(),
		"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": "https://edulure.dev", "name": learner}},
		"verb":      map[string]any{"id": "http://adlnet.gov/expapi/verbs/experienced", "display": map[string]any{"en-US": "experienced"}},
		"object":    map[string]any{"objectType": "Activity", "id": fmt.Sprintf("https://edulure.dev/xapi/activities/videos/v%d", i%50)},
		"result":    map[string]any{"duration": "PT30S"},
		"timestamp": at.UTC().Format(time.RFC3339Nano),
	}
}

func (e *env) telemetryIngestRow(ctx context.Context, learner string) (Row, error) {
	batches := 240 // 120,000 statements a side per round
	if e.opts.Smoke {
		batches = 8
	}
	// The request bodies, made before the clock starts (new IDs each round).
	bodies := func() ([][]byte, error) {
		out := make([][]byte, batches)
		at := time.Now().Add(-time.Minute)
		for b := range out {
			st := make([]any, telemetryBatch)
			for i := range st {
				st[i] = statementJSON(learner, at, b*telemetryBatch+i)
			}
			var err error
			if out[b], err = json.Marshal(map[string]any{"statements": st}); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: telemetryConns}}
	send := func(body []byte) error {
		req, err := http.NewRequestWithContext(ctx, "POST", e.url+"/api/v1/telemetry/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+e.tokens["learner"])
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, err := io.ReadAll(res.Body)
		if err != nil {
			return err
		}
		var out struct {
			Stored int `json:"stored"`
		}
		if res.StatusCode != 200 || json.Unmarshal(raw, &out) != nil || out.Stored != telemetryBatch {
			return fmt.Errorf("POST /api/v1/telemetry/events: %d %.300s", res.StatusCode, raw)
		}
		return nil
	}
	// The baseline's rows: what the plugin stores for such a statement.
	copyRows := func() ([][][]any, error) {
		out := make([][][]any, batches)
		now := time.Now().UTC()
		user := uuid.MustParse(learner)
		for b := range out {
			out[b] = make([][]any, telemetryBatch)
			for i := range out[b] {
				st := statementJSON(learner, now.Add(-time.Minute), b*telemetryBatch+i)
				raw, err := json.Marshal(st)
				if err != nil {
					return nil, err
				}
				out[b][i] = []any{uuid.MustParse(st["id"].(string)), user, now, now.Add(-time.Minute), "http://adlnet.gov/expapi/verbs/experienced",
					st["object"].(map[string]any)["id"], int64(30000), "analytics", int32(1), "client", uuid.MustParse(e.tenantID), raw}
			}
		}
		return out, nil
	}
	cols := []string{"id", "user_id", "stored_at", "occurred_at", "verb", "object_id", "duration_ms", "purpose", "policy_version", "source", "tenant_id", "raw"}
	// parallel runs fn on each of n items, telemetryConns at a time, and
	// returns the statements per second.
	parallel := func(n int, fn func(i int) error) (float64, error) {
		var (
			wg    sync.WaitGroup
			mu    sync.Mutex
			first error
			next  = make(chan int)
		)
		start := time.Now()
		for range telemetryConns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					if err := fn(i); err != nil {
						mu.Lock()
						if first == nil {
							first = err
						}
						mu.Unlock()
					}
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		return float64(n*telemetryBatch) / time.Since(start).Seconds(), first
	}
	var viaKernel, direct float64
	for r := range max(e.opts.Rounds, 1) {
		b, err := bodies()
		if err != nil {
			return Row{}, err
		}
		// One batch to warm up (connections, the plugin's prepared
		// statements), not counted.
		if err := send(b[0]); err != nil {
			return Row{}, err
		}
		cpu := e.cpuTimes()
		k, err := parallel(batches-1, func(i int) error { return send(b[i+1]) })
		if err != nil {
			return Row{}, err
		}
		e.printf("  %-28s round %d: %.0f statements/s; %s", "telemetry.ingest", r+1, k, e.cpuSince(cpu))
		rows, err := copyRows()
		if err != nil {
			return Row{}, err
		}
		cpu = e.cpuTimes()
		d, err := parallel(batches, func(i int) error {
			_, err := e.pool.CopyFrom(ctx, pgx.Identifier{"plugin_telemetry", "statements"}, cols, pgx.CopyFromRows(rows[i]))
			return err
		})
		if err != nil {
			return Row{}, fmt.Errorf("baseline COPY: %w", err)
		}
		e.printf("  %-28s round %d: %.0f statements/s; %s", "COPY into statements", r+1, d, e.cpuSince(cpu))
		viaKernel, direct = max(viaKernel, k), max(direct, d)
	}
	out := row("telemetry.ingest", viaKernel, "statements/s",
		fmt.Sprintf("COPY of the same statements' rows straight into plugin_telemetry.statements from this process, as the database superuser (batches of %d, %d connections)", telemetryBatch, telemetryConns),
		direct, ratioAtLeast(0.5))
	out.Note = fmt.Sprintf("a learner's client sending batches of %d xAPI statements, %d requests in flight: the kernel checks the body, forwards it over gRPC; the plugin checks each statement and its consent (under the person's lock), COPYs into its staging table and merges with INSERT ... ON CONFLICT DO NOTHING into the ID index and the partitioned table, and answers each statement's result. The baseline bypasses row-level security: the plugin's role could not COPY into the table at all (Postgres refuses COPY FROM under RLS), hence the staging table", telemetryBatch, telemetryConns)
	return out, nil
}

func (e *env) telemetryAggregateRows(ctx context.Context) ([]Row, error) {
	events := telemetryEvents
	if e.opts.Smoke {
		events = 20_000
	}
	start := time.Now()
	// Statements over the last 30 days: 5,000 learners, 200 courses, lesson
	// and course completions, quiz results with scores, videos watched.
	// Straight into the tables (as their owner), with their hours queued for
	// the rollup job as ingestion queues them.
	_, err := e.pool.Exec(ctx, `SELECT plugin_telemetry.ensure_statement_partitions((now() AT TIME ZONE 'UTC')::date - 31, 33)`)
	if err != nil {
		return nil, err
	}
	_, err = e.pool.Exec(ctx, `
		WITH g AS (
			SELECT i, now() - (i % (30 * 24 * 3600)) * interval '1 second' - (i % 997) * interval '1 millisecond' AS at,
				md5('learner' || (i % 5000))::uuid AS learner, md5('course' || (i % 200))::uuid AS course, i % 10 AS kind
			FROM generate_series(1, $2::bigint) i
		)
		INSERT INTO plugin_telemetry.statements (tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, object_type, course_id,
			score_scaled, success, completion, duration_ms, purpose, policy_version, source, raw)
		SELECT $1::uuid, at + interval '2 seconds', gen_random_uuid(), learner, at,
			CASE WHEN kind < 5 THEN 'http://adlnet.gov/expapi/verbs/experienced' WHEN kind < 8 THEN 'http://adlnet.gov/expapi/verbs/completed'
			     WHEN kind = 8 THEN 'http://adlnet.gov/expapi/verbs/passed' ELSE 'http://adlnet.gov/expapi/verbs/failed' END,
			'https://edulure.dev/xapi/activities/x/' || (i % 1000),
			CASE WHEN kind < 5 THEN NULL WHEN kind < 7 THEN 'http://adlnet.gov/expapi/activities/lesson' WHEN kind = 7 THEN 'http://adlnet.gov/expapi/activities/course'
			     ELSE 'http://adlnet.gov/expapi/activities/assessment' END,
			course, CASE WHEN kind >= 8 THEN (i % 101) / 100.0 END, CASE WHEN kind >= 8 THEN kind = 8 END,
			CASE WHEN kind >= 5 THEN true END, (i % 600) * 1000, 'analytics', 1, 'bench',
			jsonb_build_object('id', gen_random_uuid(), 'actor', jsonb_build_object('objectType', 'Agent',
				'account', jsonb_build_object('homePage', 'https://edulure.dev', 'name', learner)), 'timestamp', at)
		FROM g`, e.tenantID, events)
	if err != nil {
		return nil, fmt.Errorf("seeding %d statements: %w", events, err)
	}
	_, err = e.pool.Exec(ctx, `
		INSERT INTO plugin_telemetry.rollup_queue (tenant_id, hour)
		SELECT $1::uuid, h FROM generate_series(date_trunc('hour', now() - interval '30 days', 'UTC'), now(), interval '1 hour') h`, e.tenantID)
	if err != nil {
		return nil, err
	}
	if _, err := e.pool.Exec(ctx, `ANALYZE plugin_telemetry.statements`); err != nil {
		return nil, err
	}
	e.printf("  seeded %d statements over 30 days (%s)", events, time.Since(start).Round(time.Second))

	// The rollup job, through the kernel's job runner.
	start = time.Now()
	var rollup time.Duration
	var run struct {
		ID string `json:"id"`
	}
	if err := e.call("POST", "/api/v1/jobs/telemetry/rollup/runs", e.tokens["admin"], map[string]any{}, 202, &run); err != nil {
		return nil, err
	}
	for {
		var info struct {
			Status     string     `json:"status"`
			FinishedAt *time.Time `json:"finished_at"`
			LastError  *string    `json:"last_error"`
			Output     *string    `json:"output"`
		}
		if err := e.call("GET", "/api/v1/jobs/telemetry/rollup/runs/"+run.ID, e.tokens["admin"], nil, 200, &info); err != nil {
			return nil, err
		}
		if info.FinishedAt != nil {
			if info.Status != "succeeded" {
				return nil, fmt.Errorf("the rollup job %s: %v", info.Status, deref(info.LastError))
			}
			e.printf("  rollup job: %s (%s)", deref(info.Output), time.Since(start).Round(time.Second))
			rollup = time.Since(start)
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}

	from := time.Now().UTC().Add(-30 * 24 * time.Hour).Truncate(time.Hour)
	path := "/api/v1/telemetry/aggregates/courses?from=" + from.Format(time.RFC3339)
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	body, err := e.fetch(path, e.tokens["admin"], 200)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Items) != 200 {
		return nil, fmt.Errorf("the course aggregate answered %d courses, want 200: %.300s", len(page.Items), body)
	}
	res, err := e.best(e.opts.Rounds, load{name: "telemetry.aggregate_courses", conns: 1, dur: e.opts.Duration, status: 200, targets: target(get(e.url+path, e.tokens["admin"]))})
	if err != nil {
		return nil, err
	}
	// The baseline: the same figures from the statements, as the plugin's
	// role would read them without rollups (best of three).
	raw := time.Duration(1<<63 - 1)
	for range 3 {
		t := time.Now()
		var n int
		err := e.pool.QueryRow(ctx, `
			SELECT count(*) FROM (
				SELECT course_id, count(*) FILTER (WHERE verb = 'http://adlnet.gov/expapi/verbs/completed' AND object_type = 'http://adlnet.gov/expapi/activities/lesson'),
					count(*) FILTER (WHERE verb = 'http://adlnet.gov/expapi/verbs/completed' AND object_type = 'http://adlnet.gov/expapi/activities/course'),
					coalesce(sum(duration_ms), 0) / 1000, count(*)
				FROM plugin_telemetry.statements WHERE tenant_id = $1 AND occurred_at >= $2 AND course_id IS NOT NULL
				GROUP BY course_id, cohort_id) s`, e.tenantID, from).Scan(&n)
		if err != nil {
			return nil, err
		}
		raw = min(raw, time.Since(t))
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	out := row("telemetry.aggregate_courses", ms(res[0].P50), "ms",
		fmt.Sprintf("the same figures computed from the %d statements by one query in this process (no HTTP)", events), ms(raw), atMost(100))
	out.Note = fmt.Sprintf("p50 of GET /api/v1/telemetry/aggregates/courses (200 courses, 30 days) at %d statements, through the kernel, one connection (%.0f req/s, p99 %s); answered from the rollups (whole days from the daily one, the edges from the hourly one)", events, res[0].RPS, res[0].P99.Round(time.Millisecond))
	back := row("telemetry.rollup_backlog", rollup.Seconds(), "s", "", 0)
	back.Note = fmt.Sprintf("the rollup job run through the kernel over a backlog of 30 days (721 hours) holding %d statements; on schedule it runs every 10 minutes over the hours touched since", events)
	return []Row{out, back}, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
