package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/sdk"
)

// The realistic plugin read is the courses plugin's learner dashboard,
// GET /api/v1/enrolments: a learner's enrolments, newest first, with each
// course's title and the learner's progress, under row-level security.
//
// dashboardQuery is the query the plugin runs for it (enrolmentSelect and
// listEnrolments in plugins/courses/internal/courses/enrolments.go, which
// this module cannot import): the baseline runs the same SQL, in the same
// kind of transaction (sdk.DB.InTenant), as the same database role, and
// encodes the rows as JSON, in a plain Echo handler of its own process.
const dashboardQuery = `
	SELECT e.id, e.course_id, c.title, e.cohort_id, e.user_id, e.status, e.source, e.order_id, e.enrolled_by,
	       e.created_at, e.activated_at, e.waitlisted_at, e.completed_at, e.withdrawn_at,
	       p.version, p.lessons_completed, p.lessons_required, p.assessments_passed, p.assessments_required,
	       p.percent, p.time_spent_seconds, p.last_activity_at, p.completed_at
	FROM enrolments e
	JOIN courses c ON c.id = e.course_id
	LEFT JOIN course_progress p ON p.enrolment_id = e.id
	WHERE e.tenant_id = $1 AND e.user_id = $2 ORDER BY e.created_at DESC, e.id DESC LIMIT 51`

const (
	dashCourses     = 200 // courses in the institution
	dashLearners    = 200 // other learners, each enrolled in dashPerLearner courses
	dashPerLearner  = 20
	coursesDBRole   = "bench_plugin_courses"
	coursesDBSchema = "plugin_courses"
)

// dbReadRows measures the dashboard through the kernel and the plugin
// against the baseline.
func (e *env) dbReadRows(ctx context.Context) ([]Row, error) {
	if e.courses == nil {
		e.printf("  the courses plugin is not built: http.plugin_db_read skipped")
		return nil, nil
	}
	version, err := manifestVersion(e.courses.path)
	if err != nil {
		return nil, err
	}
	courses := pluginEntry{name: "courses", bin: *e.courses, version: version}
	if err := e.reload(append(e.basePlugins(), courses)...); err != nil {
		return nil, fmt.Errorf("loading the courses plugin: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck
	learner, err := e.seedDashboard(ctx)
	if err != nil {
		return nil, fmt.Errorf("seeding enrolments: %w", err)
	}
	viaKernel, err := e.fetch("/api/v1/enrolments", e.tokens["learner"], 200)
	if err != nil {
		return nil, err
	}
	var page struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(viaKernel, &page); err != nil || len(page.Items) != dashPerLearner {
		return nil, fmt.Errorf("the dashboard answered %d enrolments, want %d: %s", len(page.Items), dashPerLearner, viaKernel)
	}
	perms, err := e.fetch("/api/v1/tenant/permissions", e.tokens["admin"], 200)
	if err != nil {
		return nil, err
	}
	base, err := e.startBaseline(perms, "-db", e.dbURL)
	if err != nil {
		return nil, err
	}
	defer base.p.stop()
	baseURL := fmt.Sprintf("%s/api/v1/enrolments?tenant=%s&user=%s", base.url, e.tenantID, learner)
	b, err := getBody(baseURL)
	if err != nil {
		return nil, fmt.Errorf("baseline dashboard: %w", err)
	}
	// The baseline mirrors the plugin's query and types: check that it still
	// answers what the plugin answers.
	var fromPlugin, fromBaseline any
	if json.Unmarshal(viaKernel, &fromPlugin) != nil || json.Unmarshal(b, &fromBaseline) != nil || !reflect.DeepEqual(fromPlugin, fromBaseline) {
		e.printf("  WARNING: the baseline's dashboard differs from the plugin's; update dashboardQuery and enrolment\n  plugin:   %.300s\n  baseline: %.300s", viaKernel, b)
	}
	res, err := e.best(e.opts.Rounds,
		load{name: "baseline dashboard", conns: 64, dur: e.opts.Duration, status: 200, targets: target(get(baseURL, ""))},
		load{name: "http.plugin_db_read", conns: 64, dur: e.opts.Duration, status: 200, targets: target(get(e.url+"/api/v1/enrolments", e.tokens["learner"]))},
	)
	if err != nil {
		return nil, err
	}
	return []Row{row("http.plugin_db_read", res[1].RPS, "req/s",
		"the same query (RLS, same role, same transaction) and JSON encoding in a plain Echo handler (64 connections)", res[0].RPS, ratioAtLeast(0.7))}, nil
}

// seedDashboard writes courses, enrolments and progress straight into the
// plugin's tables: 20 enrolments for the bench learner among 4,000 of the
// institution. It returns the learner's user ID.
func (e *env) seedDashboard(ctx context.Context) (string, error) {
	var learner, instructor string
	if err := e.pool.QueryRow(ctx, "SELECT id FROM kernel.users WHERE email = 'learner@bench.test'").Scan(&learner); err != nil {
		return "", err
	}
	if err := e.pool.QueryRow(ctx, "SELECT id FROM kernel.users WHERE email = 'instructor@bench.test'").Scan(&instructor); err != nil {
		return "", err
	}
	_, err := e.pool.Exec(ctx, `
		INSERT INTO plugin_courses.courses (tenant_id, title, summary, status, published_version, created_by, published_at, created_at)
		SELECT $1, 'Course ' || g, 'A course for the benchmark', 'published', 1, $2, now(), now() - g * interval '1 minute'
		FROM generate_series(1, $3) g`, e.tenantID, instructor, dashCourses)
	if err != nil {
		return "", err
	}
	// Learners: the bench learner and dashLearners others, each enrolled in
	// dashPerLearner courses, with a progress snapshot each.
	_, err = e.pool.Exec(ctx, `
		WITH learners AS (
			SELECT $2::uuid AS user_id, 0 AS n
			UNION ALL SELECT gen_random_uuid(), g FROM generate_series(1, $3) g
		), picked AS (
			SELECT l.user_id, c.id AS course_id, row_number() OVER (PARTITION BY l.user_id ORDER BY random()) AS k
			FROM learners l CROSS JOIN plugin_courses.courses c WHERE c.tenant_id = $1
		), enrolled AS (
			INSERT INTO plugin_courses.enrolments (tenant_id, course_id, user_id, status, source, enrolled_by, created_at, activated_at)
			SELECT $1, course_id, user_id, 'active', 'self', user_id::text, now() - k * interval '1 hour', now() - k * interval '1 hour'
			FROM picked WHERE k <= $4
			RETURNING id, course_id, user_id
		)
		INSERT INTO plugin_courses.course_progress (tenant_id, enrolment_id, course_id, user_id, version, lessons_completed, lessons_required,
			assessments_passed, assessments_required, percent, time_spent_seconds, last_activity_at)
		SELECT $1, id, course_id, user_id, 1, 3, 12, 1, 4, 25, 5400, now() FROM enrolled`,
		e.tenantID, learner, dashLearners, dashPerLearner)
	if err != nil {
		return "", err
	}
	_, err = e.pool.Exec(ctx, "ANALYZE plugin_courses.courses, plugin_courses.enrolments, plugin_courses.course_progress")
	return learner, err
}

// manifestVersion asks a plugin binary for its version.
func manifestVersion(path string) (string, error) {
	out, err := exec.Command(path, "manifest").Output()
	if err != nil {
		return "", fmt.Errorf("%s manifest: %w", path, err)
	}
	var m struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(out, &m); err != nil || m.Version == "" {
		return "", fmt.Errorf("%s manifest: no version in %.200s", path, out)
	}
	return m.Version, nil
}

func getBody(url string) ([]byte, error) {
	res, err := http.Get(url)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	return io.ReadAll(res.Body)
}

// dashboardHandler is the baseline's dashboard: the plugin's query in the
// plugin's kind of transaction, as the plugin's role, rows encoded as JSON.
type dashboardHandler struct{ db *sdk.DB }

func newDashboardHandler(ctx context.Context, dbURL string) (*dashboardHandler, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4 // the plugin's pool: db_connections defaults to 4
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		// The plugin's role (row-level security applies) and schema.
		_, err := c.Exec(ctx, "SET ROLE "+coursesDBRole+"; SET search_path = "+coursesDBSchema)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &dashboardHandler{db: &sdk.DB{Pool: pool}}, nil
}

// enrolment and progress have the JSON shape of the plugin's Enrolment and
// Progress, so that the baseline encodes what the plugin encodes.
type enrolment struct {
	ID           string     `json:"id"`
	CourseID     string     `json:"course_id"`
	CourseTitle  string     `json:"course_title"`
	CohortID     *string    `json:"cohort_id,omitempty"`
	UserID       string     `json:"user_id"`
	Status       string     `json:"status"`
	Source       string     `json:"source"`
	OrderID      *string    `json:"order_id,omitempty"`
	EnrolledBy   string     `json:"enrolled_by"`
	CreatedAt    time.Time  `json:"created_at"`
	ActivatedAt  *time.Time `json:"activated_at,omitempty"`
	WaitlistedAt *time.Time `json:"waitlisted_at,omitempty"`
	CompletedAt  *time.Time `json:"completed_at,omitempty"`
	WithdrawnAt  *time.Time `json:"withdrawn_at,omitempty"`
	Progress     *progress  `json:"progress"`
}

type progress struct {
	EnrolmentID         string     `json:"enrolment_id"`
	CourseID            string     `json:"course_id"`
	Version             int        `json:"version"`
	LessonsCompleted    int        `json:"lessons_completed"`
	LessonsRequired     int        `json:"lessons_required"`
	AssessmentsPassed   int        `json:"assessments_passed"`
	AssessmentsRequired int        `json:"assessments_required"`
	Percent             int        `json:"percent"`
	TimeSpentSeconds    int64      `json:"time_spent_seconds"`
	LastActivityAt      *time.Time `json:"last_activity_at,omitempty"`
	CompletedAt         *time.Time `json:"completed_at,omitempty"`
}

func (h *dashboardHandler) serve(c echo.Context) error {
	ctx := c.Request().Context()
	tenant, user := c.QueryParam("tenant"), c.QueryParam("user")
	items := []*enrolment{}
	err := h.db.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, dashboardQuery, tenant, user)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e enrolment
			var version, lessonsDone, lessonsReq, assessDone, assessReq, percent *int
			var spent *int64
			var lastActivity, progressDone *time.Time
			if err := rows.Scan(&e.ID, &e.CourseID, &e.CourseTitle, &e.CohortID, &e.UserID, &e.Status, &e.Source, &e.OrderID, &e.EnrolledBy,
				&e.CreatedAt, &e.ActivatedAt, &e.WaitlistedAt, &e.CompletedAt, &e.WithdrawnAt,
				&version, &lessonsDone, &lessonsReq, &assessDone, &assessReq, &percent, &spent, &lastActivity, &progressDone); err != nil {
				return err
			}
			e.CreatedAt = e.CreatedAt.UTC()
			for _, t := range []*time.Time{e.ActivatedAt, e.WaitlistedAt, e.CompletedAt, e.WithdrawnAt, lastActivity, progressDone} {
				if t != nil {
					*t = t.UTC()
				}
			}
			if version != nil {
				e.Progress = &progress{EnrolmentID: e.ID, CourseID: e.CourseID, Version: *version,
					LessonsCompleted: *lessonsDone, LessonsRequired: *lessonsReq, AssessmentsPassed: *assessDone, AssessmentsRequired: *assessReq,
					Percent: *percent, TimeSpentSeconds: *spent, LastActivityAt: lastActivity, CompletedAt: progressDone}
			}
			items = append(items, &e)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sdk.NewPage(items, 50, func(e *enrolment) []string {
		return []string{e.CreatedAt.Format(time.RFC3339Nano), e.ID}
	}))
}
