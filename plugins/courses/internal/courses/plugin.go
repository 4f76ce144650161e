package courses

import (
	"context"
	"embed"
	"errors"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its schema is plugin_courses.
const Name = "courses"

// Version is the plugin's own version, released independently of the
// kernel.
const Version = "0.5.0"

// Permissions the plugin introduces. Changing a course also needs the
// resource-level rule of access.go: the caller teaches the course, or holds
// PermManageAll.
const (
	PermCourseRead     = "courses.course.read"       // browse the catalogue, read published courses, get a recommendation
	PermCourseCreate   = "courses.course.create"     // create a course (its creator becomes its instructor)
	PermCourseAuthor   = "courses.course.author"     // change, publish and schedule the courses one teaches
	PermManageAll      = "courses.course.manage_all" // change any course of the institution, assign instructors
	PermEnrolSelf      = "courses.enrolment.self"    // enrol oneself, withdraw, record one's progress, take quizzes, submit
	PermEnrolManage    = "courses.enrolment.manage"  // enrol and withdraw others, read every enrolment
	PermGrade          = "courses.submission.grade"  // grade the work of the courses one teaches (any, with manage_all)
	PermAppealReview   = "courses.appeal.review"     // resolve grade appeals
	PermCertificateAll = "courses.certificate.read_all"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Plugin is the courses plugin.
type Plugin struct {
	env *sdk.Env
}

var (
	_ sdk.Plugin      = (*Plugin)(nil)
	_ sdk.Provisioner = (*Plugin)(nil)
)

// New builds the plugin (lifecycle step 1: no I/O).
func New() *Plugin { return &Plugin{} }

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	var routes []sdk.Route
	for _, group := range [][]sdk.Route{
		p.courseRoutes(), p.moduleRoutes(), p.lessonRoutes(), p.publishRoutes(), p.nextRoutes(), p.prerequisiteRoutes(),
		p.cohortRoutes(), p.enrolmentRoutes(), p.progressRoutes(), p.quizRoutes(), p.attemptRoutes(), p.rubricRoutes(), p.assignmentRoutes(),
		p.submissionRoutes(), p.appealRoutes(), p.certificateRoutes(),
	} {
		routes = append(routes, group...)
	}
	return sdk.Manifest{
		Name:        Name,
		Version:     Version,
		Description: "Courses: catalogue, authoring, cohorts, enrolment, progress, assessments and certificates.",
		Permissions: []sdk.Permission{
			{Name: PermCourseRead, Description: "Browse the catalogue and read published courses.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermCourseCreate, Description: "Create courses.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermCourseAuthor, Description: "Change, publish and schedule the courses one teaches.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermManageAll, Description: "Change any course of the institution and assign its instructors.", DefaultRoles: []string{"admin"}},
			{Name: PermEnrolSelf, Description: "Enrol oneself, learn, take quizzes and submit assignments.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermEnrolManage, Description: "Enrol and withdraw others; read every enrolment.", DefaultRoles: []string{"admin"}},
			{Name: PermGrade, Description: "Grade submissions to the courses one teaches.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermAppealReview, Description: "Resolve grade appeals.", DefaultRoles: []string{"admin", "instructor"}},
			{Name: PermCertificateAll, Description: "Read every certificate of the institution.", DefaultRoles: []string{"admin"}},
		},
		Routes:     routes,
		Publishes:  publishedEvents,
		Subscribes: p.subscriptions(),
		Jobs:       p.jobs(),
		Migrations: migrations,
		Config:     Config{SelfEnrolment: true, DefaultPassMark: 70, DefaultQuizAttempts: 3},
		// personal.go: what the kernel exports and erases for a person or an
		// institution.
		PersonalData: p.personalData(),
	}
}

// Provision keeps the environment (lifecycle step 4): the database for
// the public verification route, the host for membership checks, the
// logger for event handlers. The kernel has checked the operator's
// configuration against Config's schema.
func (p *Plugin) Provision(_ context.Context, env *sdk.Env) error {
	if env.DB == nil {
		return errors.New("courses needs its database")
	}
	p.env = env
	return nil
}
