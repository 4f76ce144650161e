package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/audit"
)

// The personal data lifecycle's rows: erasing one person from an
// institution of 10,000 learners, and offboarding an institution of 1,000
// people, each through the kernel (its River job, every plugin's step, the
// kernel's own data, the audit log) and, as the baseline, as the plain
// DELETE (and the account's UPDATE) of the same rows in one transaction.
// Every learner of a seeded institution has 3 enrolments, each with its
// progress, 2 lessons' progress and a quiz attempt (the courses plugin), a
// note in each test plugin, an audit entry and an event of their joining.

const (
	eraseLearners    = 10_000
	offboardLearners = 1_000
	seedCourses      = 10
	seedPerLearner   = 3
)

// privacyRows measures the erasure and the offboarding.
func (e *env) privacyRows(ctx context.Context) ([]Row, error) {
	if e.courses == nil {
		e.printf("  the courses plugin is not built: the privacy rows are skipped")
		return nil, nil
	}
	version, err := manifestVersion(e.courses.path)
	if err != nil {
		return nil, err
	}
	if err := e.reload(append(e.basePlugins(), pluginEntry{name: "courses", bin: *e.courses, version: version})...); err != nil {
		return nil, fmt.Errorf("loading the courses plugin: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck
	big, small := eraseLearners, offboardLearners
	if e.opts.Smoke {
		big, small = 200, 50
	}

	// Erase one person of 10,000; the baseline deletes another's rows.
	start := time.Now()
	inst, err := e.seedInstitution(ctx, "erase", big)
	if err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	e.printf("  seeded an institution of %d learners (%s)", big, time.Since(start).Round(time.Second))
	took, err := e.timeErasure(inst, inst.learners[0])
	if err != nil {
		return nil, err
	}
	base, err := e.plainErase(ctx, inst.id, inst.learners[1])
	if err != nil {
		return nil, err
	}
	rows := []Row{row("privacy.erase_one_of_10000", ms(took), "ms",
		"the plain DELETE of the same rows (and the account's UPDATE) in one transaction", ms(base), atMost(3_000))}

	// Offboard 1,000 people; the baseline deletes a twin institution's rows.
	leaving, err := e.seedInstitution(ctx, "offboard", small)
	if err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	twin, err := e.seedInstitution(ctx, "twin", small)
	if err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	took, err = e.timeOffboarding(leaving)
	if err != nil {
		return nil, err
	}
	base, err = e.plainOffboard(ctx, twin)
	if err != nil {
		return nil, err
	}
	r := row("privacy.offboard_1000", ms(took), "ms",
		"the plain DELETE of the same rows (and the accounts' UPDATE) in one transaction", ms(base), atMost(15_000))
	r.Note = "privacy.offboard_1000 includes exporting the institution (an archive of every row and object) before erasing it"
	return append(rows, r), nil
}

// seeded is an institution seeded for the privacy rows.
type seeded struct {
	id, slug, admin string
	learners        []uuid.UUID
}

// seedInstitution creates an institution with an admin (logged in, no
// cool-off) and n learners with their history, written straight into the
// tables.
func (e *env) seedInstitution(ctx context.Context, slug string, n int) (seeded, error) {
	t, err := app.CreateTenant(ctx, e.pool, slug, "Institution "+slug)
	if err != nil {
		return seeded{}, err
	}
	s := seeded{id: t.ID.String(), slug: slug}
	email := "admin@" + slug + ".bench"
	admin, err := app.CreateUser(ctx, e.pool, app.UserSpec{Email: email, Name: "Admin", Password: password, Tenant: slug, Roles: []string{"admin"}})
	if err != nil {
		return s, err
	}
	if s.admin, err = e.login(email, slug); err != nil {
		return s, err
	}
	if err := e.call("PATCH", "/api/v1/tenant", s.admin, map[string]any{"erasure_cool_off_hours": 0}, 200, nil); err != nil {
		return s, err
	}
	var hash string
	if err := e.pool.QueryRow(ctx, `SELECT password_hash FROM kernel.users WHERE id = $1`, admin.ID).Scan(&hash); err != nil {
		return s, err
	}
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			INSERT INTO kernel.users (id, email, display_name, password_hash, email_verified_at)
			SELECT gen_random_uuid(), 'learner' || g || '@' || $1 || '.bench', 'Learner ' || g || ' of ' || $1, $2, now()
			FROM generate_series(1, $3) g RETURNING id`, slug, hash, n)
		if err != nil {
			return err
		}
		if s.learners, err = pgx.CollectRows(rows, pgx.RowTo[uuid.UUID]); err != nil {
			return err
		}
		stmts := []string{
			`INSERT INTO kernel.memberships (tenant_id, user_id, roles) SELECT $1, u, '{learner}' FROM unnest($2::uuid[]) u`,
			`INSERT INTO kernel.events (id, type, source, tenant_id, actor, data, occurred_at)
				SELECT gen_random_uuid(), 'tenancy.member.joined.v1', 'kernel', $1, 'system:cli', jsonb_build_object('user_id', u, 'roles', '["learner"]'::jsonb), now()
				FROM unnest($2::uuid[]) u`,
			`INSERT INTO plugin_courses.courses (tenant_id, title, summary, status, published_version, created_by, published_at)
				SELECT $1, 'Course ' || g, 'A course', 'published', 1, $3, now() FROM generate_series(1, ` + fmt.Sprint(seedCourses) + `) g`,
			`INSERT INTO plugin_courses.modules (tenant_id, course_id, title, position) SELECT $1, id, 'Basics', 0 FROM plugin_courses.courses WHERE tenant_id = $1`,
			`INSERT INTO plugin_courses.lessons (tenant_id, course_id, module_id, title, position)
				SELECT $1, m.course_id, m.id, 'Lesson ' || g, g FROM plugin_courses.modules m, generate_series(1, 2) g WHERE m.tenant_id = $1`,
			`INSERT INTO plugin_courses.quizzes (tenant_id, course_id, title, questions, created_by)
				SELECT $1, id, 'Check', '[]', $3 FROM plugin_courses.courses WHERE tenant_id = $1`,
			`INSERT INTO plugin_courses.enrolments (tenant_id, course_id, user_id, status, source, enrolled_by, activated_at)
				SELECT $1, c.id, u, 'active', 'self', 'user:' || u, now()
				FROM unnest($2::uuid[]) WITH ORDINALITY AS l(u, k)
				JOIN LATERAL (SELECT id FROM plugin_courses.courses WHERE tenant_id = $1 ORDER BY id OFFSET (l.k % ` + fmt.Sprint(seedCourses-seedPerLearner) + `) LIMIT ` + fmt.Sprint(seedPerLearner) + `) c ON true`,
			`INSERT INTO plugin_courses.course_progress (tenant_id, enrolment_id, course_id, user_id, version, lessons_completed, lessons_required, percent)
				SELECT $1, id, course_id, user_id, 1, 2, 2, 100 FROM plugin_courses.enrolments WHERE tenant_id = $1`,
			`INSERT INTO plugin_courses.lesson_progress (tenant_id, enrolment_id, lesson_id, time_spent_seconds, completed_at)
				SELECT $1, e.id, l.id, 300, now() FROM plugin_courses.enrolments e JOIN plugin_courses.lessons l ON l.course_id = e.course_id WHERE e.tenant_id = $1`,
			`INSERT INTO plugin_courses.quiz_attempts (tenant_id, quiz_id, enrolment_id, user_id, attempt, answers, score, max_score, percent, passed)
				SELECT $1, q.id, e.id, e.user_id, 1, '{}', 1, 1, 100, true
				FROM plugin_courses.enrolments e JOIN plugin_courses.quizzes q ON q.course_id = e.course_id WHERE e.tenant_id = $1`,
		}
		for _, st := range stmts {
			// The CTE types every parameter, whichever the statement uses.
			if _, err := tx.Exec(ctx, `WITH params AS (SELECT $1::uuid, $2::uuid[], $3::uuid) `+st, s.id, s.learners, admin.ID); err != nil {
				return fmt.Errorf("%.80s: %w", st, err)
			}
		}
		for _, plugin := range []string{"probe", "sink", "spare"} {
			if _, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{"plugin_" + plugin, "notes"}.Sanitize()+` (tenant_id, user_id, body, written_by)
				SELECT $1, u, 'Note about learner ' || u, $3 FROM unnest($2::uuid[]) u`, s.id, s.learners, admin.ID); err != nil {
				return err
			}
		}
		// The audit chain, entry by entry, as the kernel writes it.
		for _, u := range s.learners {
			if err := audit.Append(ctx, tx, audit.Entry{TenantID: s.id, ActorType: "system", ActorID: "cli", Action: "tenancy.member.joined",
				Target: u.String(), Data: map[string]any{"user_id": u.String(), "roles": []string{"learner"}}}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	_, err = e.pool.Exec(ctx, `ANALYZE kernel.users, kernel.memberships, kernel.events, kernel.audit_log, kernel.audit_personal,
		plugin_courses.enrolments, plugin_courses.course_progress, plugin_courses.lesson_progress, plugin_courses.quiz_attempts,
		plugin_probe.notes, plugin_sink.notes, plugin_spare.notes`)
	return s, err
}

// await polls a request of the API until its state is one of states.
func (e *env) await(path, token string, limit time.Duration, states ...string) (map[string]any, error) {
	deadline := time.Now().Add(limit)
	for {
		var out map[string]any
		if err := e.call("GET", path, token, nil, 200, &out); err != nil {
			return nil, err
		}
		for _, s := range states {
			if out["state"] == s {
				return out, nil
			}
		}
		if out["state"] == "failed" || out["state"] == "retrying" {
			return out, fmt.Errorf("%s is %s: %v", path, out["state"], out["steps"])
		}
		if time.Now().After(deadline) {
			return out, fmt.Errorf("%s is still %s after %s", path, out["state"], limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// timeErasure asks for a learner's erasure and waits for it to complete.
func (e *env) timeErasure(s seeded, learner uuid.UUID) (time.Duration, error) {
	start := time.Now()
	var r struct {
		ID string `json:"id"`
	}
	if err := e.call("POST", "/api/v1/tenant/members/"+learner.String()+"/erasure", s.admin, nil, 202, &r); err != nil {
		return 0, err
	}
	if _, err := e.await("/api/v1/tenant/erasures/"+r.ID, s.admin, 5*time.Minute, "completed"); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// plainErase deletes (and updates) the rows the erasure of learner
// changes, in one transaction, as a superuser.
func (e *env) plainErase(ctx context.Context, tenant string, learner uuid.UUID) (time.Duration, error) {
	start := time.Now()
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		for _, st := range []string{
			`DELETE FROM plugin_courses.lesson_progress WHERE enrolment_id IN (SELECT id FROM plugin_courses.enrolments WHERE tenant_id = $1 AND user_id = $2)`,
			`DELETE FROM plugin_courses.quiz_attempts WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM plugin_courses.course_progress WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM plugin_courses.enrolments WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM plugin_probe.notes WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM plugin_sink.notes WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM plugin_spare.notes WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM kernel.memberships WHERE tenant_id = $1 AND user_id = $2`,
			`DELETE FROM kernel.events WHERE tenant_id = $1 AND data->>'user_id' = $2::text`,
			`UPDATE kernel.users SET email = '', display_name = '', password_hash = '', erased_at = now() WHERE id = $2 AND $1::uuid IS NOT NULL`,
		} {
			if _, err := tx.Exec(ctx, st, tenant, learner); err != nil {
				return err
			}
		}
		return nil
	})
	return time.Since(start), err
}

// timeOffboarding offboards an institution and waits for it to complete.
func (e *env) timeOffboarding(s seeded) (time.Duration, error) {
	start := time.Now()
	path := "/api/v1/tenants/" + s.id + "/offboarding"
	if err := e.call("POST", path, e.tokens["operator"], map[string]any{"confirm": s.slug}, 202, nil); err != nil {
		return 0, err
	}
	out, err := e.await(path, e.tokens["operator"], 10*time.Minute, "completed")
	if err != nil {
		return 0, err
	}
	took := time.Since(start)
	e.printSteps(out)
	return took, nil
}

// printSteps prints how long each step of a request took.
func (e *env) printSteps(r map[string]any) {
	steps, _ := r["steps"].([]any)
	for _, x := range steps {
		st, _ := x.(map[string]any)
		from, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(st["started_at"]))
		to, _ := time.Parse(time.RFC3339Nano, fmt.Sprint(st["finished_at"]))
		e.printf("  step %v: %s (%v attempts)", st["step"], to.Sub(from).Round(time.Millisecond), st["attempts"])
	}
}

// plainOffboard deletes (and updates) an institution's rows in one
// transaction, as a superuser.
func (e *env) plainOffboard(ctx context.Context, s seeded) (time.Duration, error) {
	start := time.Now()
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		for _, st := range []string{
			`UPDATE kernel.users SET email = '', display_name = '', password_hash = '', erased_at = now()
				WHERE id IN (SELECT user_id FROM kernel.memberships WHERE tenant_id = $1)`,
			`DELETE FROM plugin_courses.lesson_progress WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.quiz_attempts WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.course_progress WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.enrolments WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.quizzes WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.lessons WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.modules WHERE tenant_id = $1`,
			`DELETE FROM plugin_courses.courses WHERE tenant_id = $1`,
			`DELETE FROM plugin_probe.notes WHERE tenant_id = $1`,
			`DELETE FROM plugin_sink.notes WHERE tenant_id = $1`,
			`DELETE FROM plugin_spare.notes WHERE tenant_id = $1`,
			`DELETE FROM kernel.events WHERE tenant_id = $1`,
			`DELETE FROM kernel.memberships WHERE tenant_id = $1`,
			`DELETE FROM kernel.tenants WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, st, s.id); err != nil {
				return err
			}
		}
		return nil
	})
	return time.Since(start), err
}
