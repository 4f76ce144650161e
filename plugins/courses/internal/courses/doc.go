// Package courses is Edulure's courses plugin: the catalogue and its
// authoring (courses, modules, lessons, drafts and published versions,
// prerequisites), cohorts with seats and waitlists, enrolment, progress,
// assessments (quizzes, assignments, rubrics, grading, appeals) and
// certificates with public verification.
//
// It uses only the SDK. Files, one per resource: plugin.go (manifest and
// wiring), config.go, events.go (published and subscribed types), access.go
// (who may change a course), catalogue.go, prerequisites.go, next.go,
// cohorts.go, enrolments.go, progress.go, quizzes.go, assignments.go,
// submissions.go, certificates.go, demo.go.
package courses
