package telemetry

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Rollups (docs/telemetry.md, "Aggregates"): hourly counts by verb, per
// course and cohort, quiz score buckets, and daily active learners, which
// the aggregate routes read instead of the statements. Ingestion (and
// erasure) queue the hours of occurrence they touched in rollup_queue; the
// rollup job takes the queue and recomputes each of those hours, and the
// days they fall in, from the statements. Recomputing is idempotent, so a
// run that fails and runs again, or two runs at once, leave the same rows.

// nilUUID is the cohort of rollup rows without one.
const nilUUID = "00000000-0000-0000-0000-000000000000"

// rollupBatch is the most queued rows one transaction takes.
const rollupBatch = 2000

// rollup is the rollup job: it works the institution's queue off.
func (p *Plugin) rollup(ctx context.Context, run *sdk.JobRun) error {
	total := 0
	for {
		n, err := p.rollupOnce(ctx, run)
		if err != nil {
			return err
		}
		total += n
		if n == 0 {
			break
		}
	}
	run.SetOutput(fmt.Sprintf("%d hours recomputed", total))
	return nil
}

// rollupOnce takes one batch of the queue and recomputes its hours, in one
// transaction; it returns how many hours.
func (p *Plugin) rollupOnce(ctx context.Context, s sdk.Scope) (int, error) {
	var hours []time.Time
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			DELETE FROM rollup_queue WHERE id IN (
				SELECT id FROM rollup_queue ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED)
			RETURNING hour`, rollupBatch)
		taken, err := pgx.CollectRows(rows, pgx.RowTo[time.Time])
		if err != nil || len(taken) == 0 {
			return err
		}
		set := map[time.Time]bool{}
		for _, h := range taken {
			set[h.UTC()] = true
		}
		hours = hours[:0]
		for h := range set {
			hours = append(hours, h)
		}
		sort.Slice(hours, func(i, j int) bool { return hours[i].Before(hours[j]) })
		return recompute(ctx, tx, s.Tenant(), hours)
	})
	if err != nil {
		return 0, err
	}
	p.metrics.rollups.Add(float64(len(hours)))
	return len(hours), nil
}

// recompute rebuilds the rollups of hours (and of their days) from the
// statements, a run of nearby hours at a time.
func recompute(ctx context.Context, tx pgx.Tx, tenant string, hours []time.Time) error {
	for _, run := range runs(hours) {
		if err := recomputeRun(ctx, tx, tenant, run); err != nil {
			return err
		}
	}
	return nil
}

// runs splits sorted hours into runs without a gap of more than a day:
// each run is read with one range scan of the statements (a backlog of a
// month is one pass, not one index probe per hour), and a late statement
// of a month ago does not make the scan cover the month in between.
func runs(hours []time.Time) [][]time.Time {
	var out [][]time.Time
	start := 0
	for i := 1; i <= len(hours); i++ {
		if i == len(hours) || hours[i].Sub(hours[i-1]) > 24*time.Hour {
			out = append(out, hours[start:i])
			start = i
		}
	}
	return out
}

// recomputeRun rebuilds the rollups of sorted, nearby hours and of the
// days they fall in.
func recomputeRun(ctx context.Context, tx pgx.Tx, tenant string, hours []time.Time) error {
	// Statements of these hours were stored at most a day before the
	// earliest (timestamps a little ahead of the clock): older partitions
	// are left out.
	first, last := hours[0], hours[len(hours)-1].Add(time.Hour)
	since := first.Add(-24 * time.Hour)
	daySet := map[time.Time]bool{}
	for _, h := range hours {
		daySet[h.Truncate(24*time.Hour)] = true
	}
	days := make([]time.Time, 0, len(daySet))
	for d := range daySet {
		days = append(days, d)
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	// The hours' statements: one range of occurrence, the hours asked for
	// within it, grouped by their hour h.
	const span = `FROM (SELECT s.*, date_trunc('hour', s.occurred_at, 'UTC') AS h FROM statements s
			WHERE s.tenant_id = $1::uuid AND s.stored_at >= $3 AND s.occurred_at >= $4 AND s.occurred_at < $5) s
		WHERE s.h = ANY($2::timestamptz[])`
	b := &pgx.Batch{}
	b.Queue(`DELETE FROM rollup_verbs WHERE hour = ANY($1::timestamptz[])`, hours)
	b.Queue(`INSERT INTO rollup_verbs (tenant_id, hour, verb, statements)
		SELECT $1::uuid, h, s.verb, count(*) `+span+` GROUP BY h, s.verb`, tenant, hours, since, first, last)
	b.Queue(`DELETE FROM rollup_courses WHERE hour = ANY($1::timestamptz[])`, hours)
	b.Queue(`INSERT INTO rollup_courses (tenant_id, hour, course_id, cohort_id, lesson_completions, course_completions, time_spent_ms, statements)
		SELECT $1::uuid, h, s.course_id, coalesce(s.cohort_id, '`+nilUUID+`'),
			count(*) FILTER (WHERE s.verb = '`+VerbCompleted+`' AND s.object_type = '`+ActivityLesson+`'),
			count(*) FILTER (WHERE s.verb = '`+VerbCompleted+`' AND s.object_type = '`+ActivityCourse+`'),
			coalesce(sum(s.duration_ms), 0), count(*)
		`+span+` AND s.course_id IS NOT NULL GROUP BY h, s.course_id, coalesce(s.cohort_id, '`+nilUUID+`')`, tenant, hours, since, first, last)
	b.Queue(`DELETE FROM rollup_courses_daily WHERE day = ANY($1::date[])`, dates(days))
	b.Queue(`INSERT INTO rollup_courses_daily (tenant_id, day, course_id, cohort_id, lesson_completions, course_completions, time_spent_ms, statements)
		SELECT $1::uuid, (hour AT TIME ZONE 'UTC')::date, course_id, cohort_id, sum(lesson_completions), sum(course_completions), sum(time_spent_ms), sum(statements)
		FROM rollup_courses WHERE tenant_id = $1::uuid AND hour >= $2 AND hour < $3 AND (hour AT TIME ZONE 'UTC')::date = ANY($4::date[])
		GROUP BY 2, 3, 4`, tenant, days[0], days[len(days)-1].Add(24*time.Hour), dates(days))
	b.Queue(`DELETE FROM rollup_scores WHERE hour = ANY($1::timestamptz[])`, hours)
	b.Queue(`INSERT INTO rollup_scores (tenant_id, hour, course_id, object_id, bucket, attempts)
		SELECT $1::uuid, h, coalesce(s.course_id, '`+nilUUID+`'), s.object_id, least(floor(greatest(s.score_scaled, 0) * 10), 9)::smallint, count(*)
		`+span+` AND s.score_scaled IS NOT NULL GROUP BY 1, 2, 3, 4, 5`, tenant, hours, since, first, last)
	b.Queue(`DELETE FROM rollup_active WHERE day = ANY($1::date[])`, dates(days))
	b.Queue(`INSERT INTO rollup_active (tenant_id, day, learners, statements)
		SELECT $1::uuid, d, count(DISTINCT s.user_id), count(*)
		FROM (SELECT s.user_id, (s.occurred_at AT TIME ZONE 'UTC')::date AS d FROM statements s
			WHERE s.tenant_id = $1::uuid AND s.stored_at >= $3 AND s.occurred_at >= $4 AND s.occurred_at < $5) s
		WHERE s.d = ANY($2::date[]) GROUP BY d`, tenant, dates(days), days[0].Add(-24*time.Hour), days[0], days[len(days)-1].Add(24*time.Hour))
	br := tx.SendBatch(ctx, b)
	for i := 0; i < b.Len(); i++ {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return fmt.Errorf("recomputing rollups: %w", err)
		}
	}
	return br.Close()
}

func dates(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Format(time.DateOnly)
	}
	return out
}
