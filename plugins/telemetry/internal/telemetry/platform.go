package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/edulure/edulure/sdk"
)

// The platform's own events become statements (docs/telemetry.md,
// "Platform events"), under the same consent rules as a client's: the
// statement's timestamp is when the thing happened, its purpose the
// institution's default_purpose, its source "platform:<publisher>", and its
// id a UUID derived from the event's ID, so that a redelivered event is a
// duplicate. A statement consent refuses is dropped (counted in
// telemetry_statements_total), not retried: the delivery succeeds.

// The event types the plugin subscribes to: courses' and messaging's.
const (
	EventLessonCompleted = "courses.lesson.completed.v1"
	EventCourseCompleted = "courses.course.completed.v1"
	// EventQuizAttempted is published by courses 0.5.0 and later.
	EventQuizAttempted = "courses.quiz.attempted.v1"
	// EventPostCreated and EventReactionAdded are published by messaging
	// 0.2.0 and later.
	EventPostCreated   = "messaging.post.created.v1"
	EventReactionAdded = "messaging.reaction.added.v1"
)

// PostCreated is what telemetry reads of messaging.post.created.v1.
type PostCreated struct {
	PostID    string    `json:"post_id"`
	SpaceID   string    `json:"space_id"`
	CourseID  string    `json:"course_id"`
	CohortID  string    `json:"cohort_id"`
	AuthorID  string    `json:"author_id"`
	Kind      string    `json:"kind"`
	CreatedAt time.Time `json:"created_at"`
}

// ReactionAdded is what telemetry reads of messaging.reaction.added.v1.
type ReactionAdded struct {
	TargetType string    `json:"target_type"`
	TargetID   string    `json:"target_id"`
	CourseID   string    `json:"course_id"`
	CohortID   string    `json:"cohort_id"`
	UserID     string    `json:"user_id"`
	Emoji      string    `json:"emoji"`
	CreatedAt  time.Time `json:"created_at"`
}

// LessonCompleted is what telemetry reads of courses.lesson.completed.v1.
type LessonCompleted struct {
	EnrolmentID      string    `json:"enrolment_id"`
	CourseID         string    `json:"course_id"`
	CohortID         string    `json:"cohort_id"`
	LessonID         string    `json:"lesson_id"`
	UserID           string    `json:"user_id"`
	TimeSpentSeconds int64     `json:"time_spent_seconds"`
	CompletedAt      time.Time `json:"completed_at"`
}

// CourseCompleted is what telemetry reads of courses.course.completed.v1.
type CourseCompleted struct {
	EnrolmentID string    `json:"enrolment_id"`
	CourseID    string    `json:"course_id"`
	CohortID    string    `json:"cohort_id"`
	UserID      string    `json:"user_id"`
	CompletedAt time.Time `json:"completed_at"`
}

// QuizAttempted is the data telemetry needs of courses.quiz.attempted.v1.
type QuizAttempted struct {
	AttemptID   string    `json:"attempt_id"`
	QuizID      string    `json:"quiz_id"`
	CourseID    string    `json:"course_id"`
	CohortID    string    `json:"cohort_id"`
	UserID      string    `json:"user_id"`
	Percent     float64   `json:"percent"`
	Passed      bool      `json:"passed"`
	AttemptedAt time.Time `json:"attempted_at"`
}

func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{
		{Type: EventLessonCompleted, Handler: p.onLessonCompleted},
		{Type: EventCourseCompleted, Handler: p.onCourseCompleted},
		{Type: EventQuizAttempted, Handler: p.onQuizAttempted},
		{Type: EventPostCreated, Handler: p.onPostCreated},
		{Type: EventReactionAdded, Handler: p.onReactionAdded},
	}
}

// statementNamespace derives statement IDs from event IDs (UUIDv5).
var statementNamespace = uuid.MustParse("6f1c0c6e-5b8e-4c53-9d0a-6c2f3e0b7a11")

// activity is an Edulure activity IRI.
func activity(kind string, ids ...string) string {
	s := "https://edulure.dev/xapi/activities/" + kind
	for _, id := range ids {
		s += "/" + id
	}
	return s
}

func (p *Plugin) onLessonCompleted(ctx context.Context, ev *sdk.Event) error {
	var d LessonCompleted
	if err := ev.Decode(&d); err != nil {
		return err
	}
	return p.platformStatement(ctx, ev, d.UserID, d.CompletedAt, VerbCompleted, "completed",
		activity("lessons", d.LessonID), ActivityLesson, d.CourseID, d.CohortID,
		map[string]any{"completion": true, "duration": fmt.Sprintf("PT%dS", max(d.TimeSpentSeconds, 0))})
}

func (p *Plugin) onCourseCompleted(ctx context.Context, ev *sdk.Event) error {
	var d CourseCompleted
	if err := ev.Decode(&d); err != nil {
		return err
	}
	return p.platformStatement(ctx, ev, d.UserID, d.CompletedAt, VerbCompleted, "completed",
		activity("courses", d.CourseID), ActivityCourse, d.CourseID, d.CohortID, map[string]any{"completion": true})
}

func (p *Plugin) onQuizAttempted(ctx context.Context, ev *sdk.Event) error {
	var d QuizAttempted
	if err := ev.Decode(&d); err != nil {
		return err
	}
	verb, display := VerbFailed, "failed"
	if d.Passed {
		verb, display = VerbPassed, "passed"
	}
	pct := min(max(d.Percent, 0), 100)
	return p.platformStatement(ctx, ev, d.UserID, d.AttemptedAt, verb, display,
		activity("quizzes", d.QuizID), ActivityAssessment, d.CourseID, d.CohortID,
		map[string]any{"success": d.Passed, "completion": true, "score": map[string]any{"scaled": pct / 100, "raw": pct, "min": 0, "max": 100}})
}

func (p *Plugin) onPostCreated(ctx context.Context, ev *sdk.Event) error {
	var d PostCreated
	if err := ev.Decode(&d); err != nil {
		return err
	}
	return p.platformStatement(ctx, ev, d.AuthorID, d.CreatedAt, VerbPosted, "posted",
		activity("posts", d.PostID), ActivityNote, d.CourseID, d.CohortID, map[string]any{"completion": true})
}

func (p *Plugin) onReactionAdded(ctx context.Context, ev *sdk.Event) error {
	var d ReactionAdded
	if err := ev.Decode(&d); err != nil {
		return err
	}
	object, kind := activity("posts", d.TargetID), ActivityNote
	if d.TargetType == "comment" {
		object, kind = activity("comments", d.TargetID), ActivityComment
	}
	return p.platformStatement(ctx, ev, d.UserID, d.CreatedAt, VerbLiked, "reacted to",
		object, kind, d.CourseID, d.CohortID, map[string]any{"response": d.Emoji})
}

// platformStatement builds the statement of a platform event and stores it
// as ingestion does.
func (p *Plugin) platformStatement(ctx context.Context, ev *sdk.Event, userID string, at time.Time, verb, display, object, objectType, courseID, cohortID string, result map[string]any) error {
	cfg, err := sdk.Config[Config](ctx, ev)
	if err != nil {
		return err
	}
	if !cfg.IngestionEnabled {
		p.metrics.statements.WithLabelValues(StatusRefused, "ingestion_disabled").Inc()
		return nil
	}
	ext := map[string]any{}
	if courseID != "" {
		ext[ExtCourseID] = courseID
	}
	if cohortID != "" {
		ext[ExtCohortID] = cohortID
	}
	if at.IsZero() {
		at = ev.OccurredAt
	}
	doc := map[string]any{
		"id":        uuid.NewSHA1(statementNamespace, []byte(ev.ID)).String(),
		"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": cfg.AccountHomePage, "name": userID}},
		"verb":      map[string]any{"id": verb, "display": map[string]any{"en-US": display}},
		"object":    map[string]any{"objectType": "Activity", "id": object, "definition": map[string]any{"type": objectType}},
		"result":    result,
		"timestamp": at.UTC().Format(time.RFC3339Nano),
		"version":   "2.0.0",
	}
	if len(ext) > 0 {
		doc["context"] = map[string]any{"platform": "Edulure", "extensions": ext}
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	st, errs := parseStatement(raw, cfg.AccountHomePage)
	if errs != nil {
		// Data the event's schema should not have let through: a delivery
		// that fails, is retried and ends as a dead letter for an operator.
		return fmt.Errorf("event %s (%s) makes no valid statement: %s: %s", ev.ID, ev.Type, errs[0].Field, errs[0].Message)
	}
	results := []EventResult{{}}
	if err := p.store(ctx, ev, cfg, cfg.DefaultPurpose, "platform:"+ev.Source, []pending{{idx: 0, st: st}}, results); err != nil {
		return err
	}
	p.metrics.statements.WithLabelValues(results[0].Status, results[0].Reason).Inc()
	return nil
}
