// Package courses is Edulure's courses plugin: the catalogue and its
// authoring (courses, modules, lessons, drafts and published versions,
// prerequisites), cohorts with seats and waitlists, enrolment, progress,
// assessments (quizzes, assignments, rubrics, grading, appeals) and
// certificates with public verification.
//
// It uses only the SDK. Request and response bodies, query parameters,
// event data and the configuration are Go types whose struct tags hold
// their limits: the SDK makes their schemas and the kernel checks requests
// against them before a handler runs, so a handler checks only what a
// schema cannot say.
//
// Files, one per resource: plugin.go (manifest and wiring), config.go,
// events.go (published and subscribed types, jobs), access.go (who may
// change a course; members named by ID), input.go (what a request's
// schema cannot say), revision.go (draft revisions, If-Match and ETag),
// content.go (a course version), progress_core.go (the progress snapshot
// and course completion), course.go, module.go, lesson.go, sanitize.go
// (the HTML lesson body check), publish.go (publishing and versions),
// prerequisites.go, next.go, cohorts.go, enrolments.go, orders.go (paid
// orders), waitlist.go, progress.go, members.go (members who leave),
// quizzes.go, attempts.go (quiz attempts), rubrics.go, assignments.go,
// submissions.go (and grading), appeals.go, certificates.go, demo.go. The
// contract is docs/courses.md.
package courses
