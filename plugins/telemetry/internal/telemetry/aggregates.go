package telemetry

import (
	"context"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The aggregate routes read the rollups only (rollup.go), never the
// statements: their cost follows the rollup rows of the period (courses:
// daily rows for whole days, hourly ones for the edges; verbs and scores:
// hourly rows), and they answer what the rollup job has computed, up to
// its last run (freshness says how recent).

// RangeQuery is the period of an aggregate: [from, to), at most 366 days.
type RangeQuery struct {
	From     *time.Time `query:"from" doc:"Start (inclusive), RFC 3339; default: 30 days before to."`
	To       *time.Time `query:"to" doc:"End (exclusive), RFC 3339; default: now."`
	CourseID string     `query:"course_id" format:"uuid" doc:"Only this course (courses and quiz scores)."`
}

// ActiveDay is one day's distinct learners.
type ActiveDay struct {
	Day        string `json:"day" format:"date"`
	Learners   int64  `json:"learners"`
	Statements int64  `json:"statements"`
}

// ActiveLearners answers GET /telemetry/aggregates/active-learners.
type ActiveLearners struct {
	Items []ActiveDay `json:"items"`
}

// CourseFigures are a course's (and cohort's) completions and time.
type CourseFigures struct {
	CourseID          string `json:"course_id" format:"uuid"`
	CohortID          string `json:"cohort_id,omitempty" format:"uuid" doc:"Absent: statements that name no cohort."`
	LessonCompletions int64  `json:"lesson_completions"`
	CourseCompletions int64  `json:"course_completions"`
	TimeSpentSeconds  int64  `json:"time_spent_seconds"`
	Statements        int64  `json:"statements"`
}

// CourseAggregates answers GET /telemetry/aggregates/courses.
type CourseAggregates struct {
	Items []CourseFigures `json:"items"`
}

// ScoreDistribution is one assessment's scores in ten buckets of a tenth
// of the scale each (scaled score 0–0.1, ..., 0.9–1; negatives in the first).
type ScoreDistribution struct {
	ObjectID string  `json:"object_id"`
	Attempts int64   `json:"attempts"`
	Buckets  []int64 `json:"buckets" minItems:"10" maxItems:"10"`
}

// ScoreAggregates answers GET /telemetry/aggregates/quiz-scores.
type ScoreAggregates struct {
	Items []ScoreDistribution `json:"items"`
}

// VerbCount is the statements of one verb.
type VerbCount struct {
	Verb       string `json:"verb"`
	Statements int64  `json:"statements"`
}

// VerbAggregates answers GET /telemetry/aggregates/verbs.
type VerbAggregates struct {
	Items []VerbCount `json:"items"`
}

func (p *Plugin) aggregateRoutes() []sdk.Route {
	r := func(path, summary string, resp any, h sdk.Handler) sdk.Route {
		return sdk.Route{Method: "GET", Path: "/api/v1/telemetry/aggregates/" + path, Permission: PermAggregateRead,
			Query: RangeQuery{}, Summary: summary, Response: resp, Handler: h}
	}
	return []sdk.Route{
		r("active-learners", "Distinct learners with statements per day (UTC), from the rollups", ActiveLearners{}, p.activeLearners),
		r("courses", "Lesson and course completions and time spent per course and cohort, from the rollups", CourseAggregates{}, p.courseAggregates),
		r("quiz-scores", "Score distributions per assessment (ten buckets of the scaled score), from the rollups", ScoreAggregates{}, p.scoreAggregates),
		r("verbs", "Statements per verb, from the rollups", VerbAggregates{}, p.verbAggregates),
	}
}

// period reads a RangeQuery, hours rounded down.
func period(req *sdk.Request) (from, to time.Time, q RangeQuery, err error) {
	q, err = sdk.Query[RangeQuery](req)
	if err != nil {
		return
	}
	to = time.Now().UTC()
	if q.To != nil {
		to = q.To.UTC()
	}
	from = to.Add(-30 * 24 * time.Hour)
	if q.From != nil {
		from = q.From.UTC()
	}
	switch {
	case !from.Before(to):
		err = sdk.Invalid(sdk.FieldError{Field: "from", Message: "must be before to"})
	case to.Sub(from) > 366*24*time.Hour:
		err = sdk.Invalid(sdk.FieldError{Field: "from", Message: "must be at most 366 days before to"})
	}
	q.CourseID, _ = sdk.NormalizeUUID(q.CourseID)
	return from.Truncate(time.Hour), to, q, err
}

func (p *Plugin) activeLearners(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	from, to, _, err := period(req)
	if err != nil {
		return nil, err
	}
	out := ActiveLearners{Items: []ActiveDay{}}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT to_char(day, 'YYYY-MM-DD'), learners, statements FROM rollup_active
			WHERE tenant_id = $1 AND day >= $2::date AND day < ($3::timestamptz AT TIME ZONE 'UTC')::date + 1 ORDER BY day`,
			req.Tenant(), from.Format(time.DateOnly), to)
		return forEachRow(rows, func(r pgx.Rows) error {
			var d ActiveDay
			err := r.Scan(&d.Day, &d.Learners, &d.Statements)
			out.Items = append(out.Items, d)
			return err
		})
	})
	return jsonOr(http.StatusOK, out, err)
}

func (p *Plugin) courseAggregates(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	from, to, q, err := period(req)
	if err != nil {
		return nil, err
	}
	out := CourseAggregates{Items: []CourseFigures{}}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		// The whole days of the period from the daily rollup, the hours
		// before and after them from the hourly one.
		dayFrom, dayTo := from.Truncate(24*time.Hour), to.Truncate(24*time.Hour)
		if dayFrom.Before(from) {
			dayFrom = dayFrom.Add(24 * time.Hour)
		}
		if !dayFrom.Before(dayTo) {
			dayFrom, dayTo = to, to // no whole day: every hour from the hourly rollup
		}
		rows, _ := tx.Query(ctx, `
			SELECT course_id::text, cohort_id::text, sum(lc), sum(cc), sum(ms) / 1000, sum(n) FROM (
				SELECT course_id, cohort_id, lesson_completions AS lc, course_completions AS cc, time_spent_ms AS ms, statements AS n
				FROM rollup_courses_daily WHERE tenant_id = $1 AND day >= $4::date AND day < $5::date AND ($6 = '' OR course_id = nullif($6, '')::uuid)
				UNION ALL
				SELECT course_id, cohort_id, lesson_completions, course_completions, time_spent_ms, statements
				FROM rollup_courses WHERE tenant_id = $1 AND hour >= $2 AND hour < $7 AND ($6 = '' OR course_id = nullif($6, '')::uuid)
				UNION ALL
				SELECT course_id, cohort_id, lesson_completions, course_completions, time_spent_ms, statements
				FROM rollup_courses WHERE tenant_id = $1 AND hour >= $8 AND hour < $3 AND ($6 = '' OR course_id = nullif($6, '')::uuid)
			) r
			GROUP BY course_id, cohort_id ORDER BY course_id, cohort_id`,
			req.Tenant(), from, to, dayFrom.Format(time.DateOnly), dayTo.Format(time.DateOnly), q.CourseID, dayFrom, dayTo)
		return forEachRow(rows, func(r pgx.Rows) error {
			var c CourseFigures
			err := r.Scan(&c.CourseID, &c.CohortID, &c.LessonCompletions, &c.CourseCompletions, &c.TimeSpentSeconds, &c.Statements)
			if c.CohortID == nilUUID {
				c.CohortID = ""
			}
			out.Items = append(out.Items, c)
			return err
		})
	})
	return jsonOr(http.StatusOK, out, err)
}

func (p *Plugin) scoreAggregates(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	from, to, q, err := period(req)
	if err != nil {
		return nil, err
	}
	out := ScoreAggregates{Items: []ScoreDistribution{}}
	byObject := map[string]int{}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT object_id, bucket, sum(attempts) FROM rollup_scores
			WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 AND ($4 = '' OR course_id = nullif($4, '')::uuid)
			GROUP BY object_id, bucket ORDER BY object_id, bucket`, req.Tenant(), from, to, q.CourseID)
		return forEachRow(rows, func(r pgx.Rows) error {
			var obj string
			var bucket int
			var n int64
			if err := r.Scan(&obj, &bucket, &n); err != nil {
				return err
			}
			i, ok := byObject[obj]
			if !ok {
				i = len(out.Items)
				byObject[obj] = i
				out.Items = append(out.Items, ScoreDistribution{ObjectID: obj, Buckets: make([]int64, 10)})
			}
			out.Items[i].Buckets[bucket] += n
			out.Items[i].Attempts += n
			return nil
		})
	})
	return jsonOr(http.StatusOK, out, err)
}

func (p *Plugin) verbAggregates(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	from, to, _, err := period(req)
	if err != nil {
		return nil, err
	}
	out := VerbAggregates{Items: []VerbCount{}}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT verb, sum(statements) FROM rollup_verbs WHERE tenant_id = $1 AND hour >= $2 AND hour < $3
			GROUP BY verb ORDER BY sum(statements) DESC, verb`, req.Tenant(), from, to)
		return forEachRow(rows, func(r pgx.Rows) error {
			var v VerbCount
			err := r.Scan(&v.Verb, &v.Statements)
			out.Items = append(out.Items, v)
			return err
		})
	})
	return jsonOr(http.StatusOK, out, err)
}
