package courses

import (
	"encoding/json"
	"time"

	"github.com/edulure/edulure/sdk"
)

// Event types the plugin publishes. Each is published in the transaction
// of the change it reports, so it is delivered if and only if the change
// commits. Data structs below; a version never loses fields.
const (
	EventCoursePublished    = "courses.course.published.v1"
	EventEnrolmentCreated   = "courses.enrolment.created.v1"
	EventEnrolmentPromoted  = "courses.enrolment.promoted.v1"
	EventEnrolmentWithdrawn = "courses.enrolment.withdrawn.v1"
	EventLessonCompleted    = "courses.lesson.completed.v1"
	EventCourseCompleted    = "courses.course.completed.v1"
	EventSubmissionGraded   = "courses.submission.graded.v1"
	EventCertificateIssued  = "courses.certificate.issued.v1"
)

// EventOrderPaid is the commerce plugin's event that enrols a buyer
// (enrolments.go reads OrderPaid from it).
const EventOrderPaid = "commerce.order.paid.v1"

// CoursePublished is the data of courses.course.published.v1.
type CoursePublished struct {
	CourseID string `json:"course_id"`
	Version  int    `json:"version"`
	Title    string `json:"title"`
}

// EnrolmentChanged is the data of courses.enrolment.created.v1,
// courses.enrolment.promoted.v1 (a waitlisted learner got a seat) and
// courses.enrolment.withdrawn.v1.
type EnrolmentChanged struct {
	EnrolmentID string `json:"enrolment_id"`
	CourseID    string `json:"course_id"`
	CohortID    string `json:"cohort_id,omitempty"`
	UserID      string `json:"user_id"`
	Status      string `json:"status"` // after the change: active, waitlisted, withdrawn
	Source      string `json:"source"` // self, admin, order
	// FreedSeat: a withdrawal gave up a seat in a cohort with a limit (the
	// promote-waitlist job then fills it).
	FreedSeat bool `json:"freed_seat,omitempty"`
}

// LessonCompleted is the data of courses.lesson.completed.v1 (the
// gamification example reads user_id, course_id and lesson_id).
type LessonCompleted struct {
	EnrolmentID      string    `json:"enrolment_id"`
	CourseID         string    `json:"course_id"`
	LessonID         string    `json:"lesson_id"`
	UserID           string    `json:"user_id"`
	TimeSpentSeconds int       `json:"time_spent_seconds"`
	CompletedAt      time.Time `json:"completed_at"`
}

// CourseCompleted is the data of courses.course.completed.v1; the
// issue-certificate job runs on it.
type CourseCompleted struct {
	EnrolmentID string    `json:"enrolment_id"`
	CourseID    string    `json:"course_id"`
	UserID      string    `json:"user_id"`
	Version     int       `json:"version"`
	CompletedAt time.Time `json:"completed_at"`
}

// SubmissionGraded is the data of courses.submission.graded.v1 (also on a
// regrade after an upheld appeal).
type SubmissionGraded struct {
	SubmissionID string `json:"submission_id"`
	AssignmentID string `json:"assignment_id"`
	CourseID     string `json:"course_id"`
	UserID       string `json:"user_id"`
	Percent      int    `json:"percent"`
	Passed       bool   `json:"passed"`
	Regrade      bool   `json:"regrade,omitempty"`
}

// CertificateIssued is the data of courses.certificate.issued.v1.
type CertificateIssued struct {
	CertificateID string `json:"certificate_id"`
	CourseID      string `json:"course_id"`
	UserID        string `json:"user_id"`
	SHA256        string `json:"sha256"`
}

var publishedEvents = []sdk.EventType{
	{Type: EventCoursePublished, Description: "A course's draft was published as a new version.", Schema: schema(`{
		"course_id": {"type": "string", "format": "uuid"},
		"version": {"type": "integer", "minimum": 1},
		"title": {"type": "string", "minLength": 1, "maxLength": 200}}`, "course_id", "version", "title")},
	{Type: EventEnrolmentCreated, Description: "A learner enrolled (status active, or waitlisted for a full cohort).", Schema: enrolmentSchema},
	{Type: EventEnrolmentPromoted, Description: "A waitlisted learner got a freed seat.", Schema: enrolmentSchema},
	{Type: EventEnrolmentWithdrawn, Description: "A learner left a course.", Schema: enrolmentSchema},
	{Type: EventLessonCompleted, Description: "A learner completed a lesson (once per enrolment and lesson).", Schema: schema(`{
		"enrolment_id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"lesson_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"time_spent_seconds": {"type": "integer", "minimum": 0},
		"completed_at": {"type": "string", "format": "date-time"}}`, "enrolment_id", "course_id", "lesson_id", "user_id", "completed_at")},
	{Type: EventCourseCompleted, Description: "A learner completed every required lesson and assessment of a course.", Schema: schema(`{
		"enrolment_id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"version": {"type": "integer", "minimum": 1},
		"completed_at": {"type": "string", "format": "date-time"}}`, "enrolment_id", "course_id", "user_id", "version", "completed_at")},
	{Type: EventSubmissionGraded, Description: "An assignment submission was graded or regraded.", Schema: schema(`{
		"submission_id": {"type": "string", "format": "uuid"},
		"assignment_id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"percent": {"type": "integer", "minimum": 0, "maximum": 100},
		"passed": {"type": "boolean"},
		"regrade": {"type": "boolean"}}`, "submission_id", "assignment_id", "course_id", "user_id", "percent", "passed")},
	{Type: EventCertificateIssued, Description: "A certificate was issued for a completed course.", Schema: schema(`{
		"certificate_id": {"type": "string", "format": "uuid"},
		"course_id": {"type": "string", "format": "uuid"},
		"user_id": {"type": "string", "format": "uuid"},
		"sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}`, "certificate_id", "course_id", "user_id", "sha256")},
}

var enrolmentSchema = schema(`{
	"enrolment_id": {"type": "string", "format": "uuid"},
	"course_id": {"type": "string", "format": "uuid"},
	"cohort_id": {"type": "string", "format": "uuid"},
	"user_id": {"type": "string", "format": "uuid"},
	"status": {"enum": ["active", "waitlisted", "completed", "withdrawn"]},
	"source": {"enum": ["self", "admin", "order"]},
	"freed_seat": {"type": "boolean"}}`, "enrolment_id", "course_id", "user_id", "status", "source")

// schema is a JSON Schema object with the given properties (a JSON object
// literal) and required fields.
func schema(properties string, required ...string) json.RawMessage {
	req, _ := json.Marshal(required) // []string always encodes
	return json.RawMessage(`{"type": "object", "required": ` + string(req) + `, "properties": ` + properties + `}`)
}

// subscriptions are the events the plugin handles.
func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{
		// A paid order enrols its buyer in the courses it bought
		// (enrolments.go); the order's ID makes a redelivery enrol once.
		{Type: EventOrderPaid, Handler: p.orderPaid, MaxAttempts: 10},
		// A member who leaves the institution gives up their seats
		// (members.go).
		{Type: EventMemberRemoved, Handler: p.memberRemoved},
	}
}

// Job names.
const (
	JobPromoteWaitlist  = "promote-waitlist"
	JobPromoteWaitlists = "promote-waitlists"
	JobIssueCertificate = "issue-certificate"
	JobDemoContent      = "demo-content"
)

// jobs are the plugin's jobs: waitlist promotion and certificate issue run
// on events, not inside the request that caused them.
func (p *Plugin) jobs() []sdk.Job {
	return []sdk.Job{
		{
			Name: JobPromoteWaitlist, Description: "Give a seat freed by a withdrawal to the next waitlisted learner.",
			OnEvent: EventEnrolmentWithdrawn, PerTenant: true, MaxAttempts: 5, Handler: p.promoteWaitlist,
		},
		{
			Name: JobPromoteWaitlists, Description: "Fill every cohort's free seats from its waitlist (seat limits raised, missed events).",
			Schedule: "*/5 * * * *", PerTenant: true, MaxAttempts: 3, Handler: p.promoteWaitlists,
		},
		{
			Name: JobIssueCertificate, Description: "Issue the certificate of a completed course.",
			OnEvent: EventCourseCompleted, PerTenant: true, MaxAttempts: 10, Handler: p.issueCertificate,
		},
		{
			Name: JobDemoContent, Description: "Create a demo course with a quiz and an assignment (make run).",
			PerTenant: true, MaxAttempts: 1, Permission: PermManageAll, Handler: p.demoContent,
		},
	}
}
