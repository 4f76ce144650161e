package courses

import (
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
	EventQuizAttempted      = "courses.quiz.attempted.v1"
)

// EventOrderPaid is the commerce plugin's event that enrols a buyer
// (orders.go reads OrderPaid from it).
const EventOrderPaid = "commerce.order.paid.v1"

// EventOrderRefunded is the commerce plugin's event for an order refunded
// in full: the enrolments the order made are withdrawn.
const EventOrderRefunded = "commerce.order.refunded.v1"

// EventSubscriptionEnded is the commerce plugin's event for a subscription
// bought through a checkout that ended for good: the enrolments its order
// made are withdrawn, as for a refund.
const EventSubscriptionEnded = "commerce.subscription.ended.v1"

// CoursePublished is the data of courses.course.published.v1.
type CoursePublished struct {
	CourseID string `json:"course_id" format:"uuid"`
	Version  int    `json:"version" minimum:"1"`
	Title    string `json:"title" minLength:"1" maxLength:"200"`
}

// EnrolmentChanged is the data of courses.enrolment.created.v1,
// courses.enrolment.promoted.v1 (a waitlisted learner got a seat) and
// courses.enrolment.withdrawn.v1.
type EnrolmentChanged struct {
	EnrolmentID string `json:"enrolment_id" format:"uuid"`
	CourseID    string `json:"course_id" format:"uuid"`
	CohortID    string `json:"cohort_id,omitempty" format:"uuid"`
	UserID      string `json:"user_id" format:"uuid"`
	Status      string `json:"status" enum:"active,waitlisted,completed,withdrawn" doc:"After the change."`
	Source      string `json:"source" enum:"self,admin,order"`
	// OrderID: the order (of the commerce plugin) that enrolled the
	// learner, for source order.
	OrderID string `json:"order_id,omitempty" maxLength:"200" doc:"The order that made the enrolment (source order)."`
	// FreedSeat: a withdrawal gave up a seat in a cohort with a limit (the
	// promote-waitlist job then fills it).
	FreedSeat bool `json:"freed_seat,omitempty" doc:"A withdrawal gave up a seat in a cohort with a seat limit."`
}

// LessonCompleted is the data of courses.lesson.completed.v1 (the
// gamification example reads user_id, course_id and lesson_id).
type LessonCompleted struct {
	EnrolmentID      string    `json:"enrolment_id" format:"uuid"`
	CourseID         string    `json:"course_id" format:"uuid"`
	LessonID         string    `json:"lesson_id" format:"uuid"`
	UserID           string    `json:"user_id" format:"uuid"`
	TimeSpentSeconds int       `json:"time_spent_seconds" minimum:"0"`
	CompletedAt      time.Time `json:"completed_at"`
}

// CourseCompleted is the data of courses.course.completed.v1; the
// issue-certificate job runs on it.
type CourseCompleted struct {
	EnrolmentID string    `json:"enrolment_id" format:"uuid"`
	CourseID    string    `json:"course_id" format:"uuid"`
	UserID      string    `json:"user_id" format:"uuid"`
	Version     int       `json:"version" minimum:"1"`
	CompletedAt time.Time `json:"completed_at"`
}

// SubmissionGraded is the data of courses.submission.graded.v1 (also on a
// regrade after an upheld appeal).
type SubmissionGraded struct {
	SubmissionID string `json:"submission_id" format:"uuid"`
	AssignmentID string `json:"assignment_id" format:"uuid"`
	CourseID     string `json:"course_id" format:"uuid"`
	UserID       string `json:"user_id" format:"uuid"`
	Percent      int    `json:"percent" minimum:"0" maximum:"100"`
	Passed       bool   `json:"passed"`
	Regrade      bool   `json:"regrade,omitempty"`
}

// QuizAttempted is the data of courses.quiz.attempted.v1: a learner's
// attempt at a quiz, graded (the telemetry plugin records it as an xAPI
// statement, passed or failed, with the score).
type QuizAttempted struct {
	AttemptID   string    `json:"attempt_id" format:"uuid"`
	QuizID      string    `json:"quiz_id" format:"uuid"`
	EnrolmentID string    `json:"enrolment_id" format:"uuid"`
	CourseID    string    `json:"course_id" format:"uuid"`
	CohortID    string    `json:"cohort_id,omitempty" format:"uuid"`
	UserID      string    `json:"user_id" format:"uuid"`
	Attempt     int       `json:"attempt" minimum:"1" doc:"The learner's attempt number at this quiz in this enrolment."`
	Percent     int       `json:"percent" minimum:"0" maximum:"100"`
	Passed      bool      `json:"passed"`
	AttemptedAt time.Time `json:"attempted_at"`
}

// CertificateIssued is the data of courses.certificate.issued.v1.
type CertificateIssued struct {
	CertificateID string `json:"certificate_id" format:"uuid"`
	CourseID      string `json:"course_id" format:"uuid"`
	UserID        string `json:"user_id" format:"uuid"`
	SHA256        string `json:"sha256" pattern:"^[0-9a-f]{64}$"`
}

var publishedEvents = []sdk.EventType{
	{Type: EventCoursePublished, Description: "A course's draft was published as a new version.", Schema: CoursePublished{}},
	{Type: EventEnrolmentCreated, Description: "A learner enrolled (status active, or waitlisted for a full cohort).", Schema: EnrolmentChanged{}},
	{Type: EventEnrolmentPromoted, Description: "A waitlisted learner got a freed seat.", Schema: EnrolmentChanged{}},
	{Type: EventEnrolmentWithdrawn, Description: "A learner left a course.", Schema: EnrolmentChanged{}},
	{Type: EventLessonCompleted, Description: "A learner completed a lesson (once per enrolment and lesson).", Schema: LessonCompleted{}},
	{Type: EventCourseCompleted, Description: "A learner completed every required lesson and assessment of a course.", Schema: CourseCompleted{}},
	{Type: EventSubmissionGraded, Description: "An assignment submission was graded or regraded.", Schema: SubmissionGraded{}},
	{Type: EventCertificateIssued, Description: "A certificate was issued for a completed course.", Schema: CertificateIssued{}},
	{Type: EventQuizAttempted, Description: "A learner's quiz attempt was graded (passed or not, with the score).", Schema: QuizAttempted{}},
}

// subscriptions are the events the plugin handles.
func (p *Plugin) subscriptions() []sdk.Subscription {
	return []sdk.Subscription{
		// A paid order enrols its buyer in the courses it bought
		// (orders.go); the order's ID makes a redelivery enrol once.
		{Type: EventOrderPaid, Handler: p.orderPaid, MaxAttempts: 10},
		// A refunded order withdraws the enrolments it made (orders.go).
		{Type: EventOrderRefunded, Handler: p.orderRefunded, MaxAttempts: 10},
		// So does a subscription's end (its data carries order_id and
		// user_id too).
		{Type: EventSubscriptionEnded, Handler: p.orderRefunded, MaxAttempts: 10},
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
