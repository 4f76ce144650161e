package courses

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// DemoArgs are the arguments of a demo-content run, as `edulure dev` gives
// them: the demo institution's admin (who asked), its instructor (who
// teaches the course) and, optionally, a learner to enrol. Each must be a
// member of the institution the run is for: the instructor one who may
// author courses.
type DemoArgs struct {
	AdminID      string `json:"admin_id,omitempty"`
	InstructorID string `json:"instructor_id"`
	LearnerID    string `json:"learner_id,omitempty"`
}

// DemoCourseTitle names the demo course; a run that finds it does nothing.
const DemoCourseTitle = "Data Literacy for Everyone"

// demoContent is the demo-content job: `make run` (edulure dev) starts it
// for the demo institution. It creates and publishes a course with two
// modules, four lessons, a quiz, a rubric, an assignment and a cohort, and
// enrols the learner, in one transaction, publishing the same events as the
// API would. It runs once per institution: a second run finds the course.
func (p *Plugin) demoContent(ctx context.Context, run *sdk.JobRun) error {
	var args DemoArgs
	if err := run.Decode(&args); err != nil {
		return err
	}
	if err := p.checkDemoPeople(ctx, run.TenantID, &args); err != nil {
		return err
	}
	return run.Tx(ctx, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM courses WHERE title = $1)`, DemoCourseTitle).Scan(&exists); err != nil {
			return err
		}
		if exists {
			run.SetOutput("the demo course exists")
			return nil
		}
		courseID, err := seedDemoCourse(ctx, tx, args.InstructorID)
		if err != nil {
			return fmt.Errorf("creating the demo course: %w", err)
		}
		content, err := draftContent(ctx, tx, courseID)
		if err != nil {
			return err
		}
		content.Version = 1
		raw, err := json.Marshal(content)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO course_versions (course_id, version, content, note, published_by) VALUES ($1, 1, $2, 'Demo content', $3)`,
			courseID, raw, args.InstructorID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE courses SET status = 'published', published_version = 1, published_at = now() WHERE id = $1`, courseID); err != nil {
			return err
		}
		if err := run.Publish(ctx, tx, EventCoursePublished, CoursePublished{CourseID: courseID, Version: 1, Title: DemoCourseTitle}); err != nil {
			return err
		}
		out := "created and published the demo course " + courseID
		if args.LearnerID != "" {
			var cohortID, enrolmentID string
			if err := tx.QueryRow(ctx, `SELECT id FROM cohorts WHERE course_id = $1`, courseID).Scan(&cohortID); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, `INSERT INTO enrolments (course_id, cohort_id, user_id, status, source, enrolled_by, activated_at)
				VALUES ($1, $2, $3, 'active', 'admin', $4, now()) RETURNING id`,
				courseID, cohortID, args.LearnerID, "job:"+JobDemoContent).Scan(&enrolmentID)
			if err != nil {
				return err
			}
			if _, err := refreshProgress(ctx, tx, run, enrolmentID); err != nil {
				return err
			}
			err = run.Publish(ctx, tx, EventEnrolmentCreated, EnrolmentChanged{
				EnrolmentID: enrolmentID, CourseID: courseID, CohortID: cohortID, UserID: args.LearnerID, Status: "active", Source: "admin",
			})
			if err != nil {
				return err
			}
			out += " and enrolled the learner"
		}
		run.SetOutput(out)
		return nil
	})
}

// checkDemoPeople checks the people a run names before anything is
// written, and lowercases their IDs: the instructor must be a member of
// the institution who may author courses (422 not_an_instructor), the
// admin and the learner members (422 not_a_member). Another institution's
// users, or no one, are refused, so a run cannot make a stranger teach or
// learn here.
func (p *Plugin) checkDemoPeople(ctx context.Context, tenantID string, args *DemoArgs) error {
	people := []struct {
		field  string
		id     *string
		author bool // must be one who may author; else a member, and optional
	}{{"instructor_id", &args.InstructorID, true}, {"admin_id", &args.AdminID, false}, {"learner_id", &args.LearnerID, false}}
	var bad []sdk.FieldError
	code := ""
	for _, who := range people {
		if *who.id == "" && !who.author {
			continue
		}
		id, ok := sdk.NormalizeUUID(*who.id)
		if !ok {
			bad = append(bad, sdk.FieldError{Field: who.field, Message: "must be a UUID"})
			continue
		}
		*who.id = id
		var err error
		if who.author {
			ok, err = p.memberMayAuthor(ctx, tenantID, id)
		} else {
			var m sdk.Membership
			m, err = p.membership(ctx, tenantID, id)
			ok = m.Member
		}
		switch {
		case err != nil:
			return err
		case !ok && who.author:
			bad, code = append(bad, sdk.FieldError{Field: who.field, Message: "is not a member of the institution who may author courses"}), "not_an_instructor"
		case !ok:
			bad = append(bad, sdk.FieldError{Field: who.field, Message: "is not a member of the institution"})
			if code == "" {
				code = "not_a_member"
			}
		}
	}
	if len(bad) > 0 {
		return sdk.Invalid(bad...).WithCode(code)
	}
	return nil
}

// seedDemoCourse writes the demo course's draft and returns its ID.
func seedDemoCourse(ctx context.Context, tx pgx.Tx, instructorID string) (string, error) {
	var courseID string
	err := tx.QueryRow(ctx, `INSERT INTO courses (title, summary, created_by) VALUES ($1, $2, $3) RETURNING id`,
		DemoCourseTitle, "Read charts, question numbers and make a small analysis of your own: a four-lesson course with a quiz and a project.", instructorID).Scan(&courseID)
	if err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO course_instructors (course_id, user_id, added_by) VALUES ($1, $2, $2)`, courseID, instructorID); err != nil {
		return "", err
	}
	modules := []struct {
		title   string
		lessons [][3]string // title, body, minutes
	}{
		{"Reading data", [][3]string{
			{"What a chart claims", "# What a chart claims\n\nEvery chart makes an argument. Start with the axes: what is measured, in which units, from where?", "15"},
			{"Averages and spread", "# Averages and spread\n\nThe mean hides as much as it shows. Look at the spread before you believe the middle.", "20"},
		}},
		{"Working with data", [][3]string{
			{"Cleaning a spreadsheet", "# Cleaning a spreadsheet\n\nMissing values, duplicates and units: three checks before any analysis.", "25"},
			{"Your first analysis", "# Your first analysis\n\nAsk one question, answer it with one chart, and write down what it does not show.", "30"},
		}},
	}
	var firstLesson, lastLesson string
	for mi, m := range modules {
		var moduleID string
		if err := tx.QueryRow(ctx, `INSERT INTO modules (course_id, title, position) VALUES ($1, $2, $3) RETURNING id`, courseID, m.title, mi).Scan(&moduleID); err != nil {
			return "", err
		}
		for li, l := range m.lessons {
			var lessonID string
			err := tx.QueryRow(ctx, `INSERT INTO lessons (course_id, module_id, title, body, estimated_minutes, position, assets)
				VALUES ($1, $2, $3, $4, $5::int, $6, $7) RETURNING id`,
				courseID, moduleID, l[0], l[1], l[2], li, `[{"url": "https://assets.demo.edulure.test/`+fmt.Sprint(mi, li)+`.mp4", "type": "video/mp4", "size_bytes": 10485760, "title": "Video"}]`).Scan(&lessonID)
			if err != nil {
				return "", err
			}
			if firstLesson == "" {
				firstLesson = lessonID
			} else if _, err := tx.Exec(ctx, `INSERT INTO lesson_prerequisites (lesson_id, requires_lesson_id) VALUES ($1, $2)`, lessonID, lastLesson); err != nil {
				return "", err
			}
			lastLesson = lessonID
		}
	}
	questions := `[
		{"id": "q1", "prompt": "A chart's y-axis starts at 95. What should you check first?", "kind": "single", "points": 1,
		 "options": [{"id": "a", "text": "The scale of the axis"}, {"id": "b", "text": "The colour of the bars"}], "correct": ["a"]},
		{"id": "q2", "prompt": "Which describe spread?", "kind": "multiple", "points": 2,
		 "options": [{"id": "a", "text": "Standard deviation"}, {"id": "b", "text": "Interquartile range"}, {"id": "c", "text": "Mean"}], "correct": ["a", "b"]}]`
	if _, err := tx.Exec(ctx, `INSERT INTO quizzes (course_id, lesson_id, title, questions, max_attempts, created_by) VALUES ($1, $2, 'Reading data check', $3, 3, $4)`,
		courseID, firstLesson, questions, instructorID); err != nil {
		return "", err
	}
	criteria := fmt.Sprintf(`[
		{"id": %q, "title": "Question", "levels": [{"id": %q, "title": "Unclear", "points": 0}, {"id": %q, "title": "Clear", "points": 5}]},
		{"id": %q, "title": "Evidence", "levels": [{"id": %q, "title": "Missing", "points": 0}, {"id": %q, "title": "Partial", "points": 3}, {"id": %q, "title": "Convincing", "points": 5}]}]`,
		uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString())
	var rubricID string
	if err := tx.QueryRow(ctx, `INSERT INTO rubrics (course_id, title, criteria, created_by) VALUES ($1, 'Analysis rubric', $2, $3) RETURNING id`,
		courseID, criteria, instructorID).Scan(&rubricID); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO assignments (course_id, lesson_id, rubric_id, title, instructions, due_at, late_policy, late_penalty_percent, late_cutoff_days, created_by)
		VALUES ($1, $2, $3, 'A question and a chart', 'Pick a public dataset, ask one question and answer it with one chart.', $4, 'penalty', 10, 5, $5)`,
		courseID, lastLesson, rubricID, time.Now().Add(30*24*time.Hour), instructorID); err != nil {
		return "", err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO cohorts (course_id, name, starts_at, ends_at, seat_limit, created_by) VALUES ($1, 'Spring cohort', $2, $3, 30, $4)`,
		courseID, time.Now().Add(-24*time.Hour), time.Now().Add(90*24*time.Hour), instructorID); err != nil {
		return "", err
	}
	return courseID, nil
}
