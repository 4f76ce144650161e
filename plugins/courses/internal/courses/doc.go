// Package courses is Edulure's courses plugin: the catalogue and its
// authoring (courses, modules, lessons, drafts and published versions,
// prerequisites), cohorts with seats and waitlists, enrolment, progress,
// assessments (quizzes, assignments, rubrics, grading, appeals) and
// certificates with public verification.
//
// It uses only the SDK. Files, one per resource: plugin.go (manifest and
// wiring), config.go, events.go (published and subscribed types, jobs),
// access.go (who may change a course), content.go (a course version),
// progress_core.go (the progress snapshot and course completion),
// catalogue.go, prerequisites.go, next.go, cohorts.go, enrolments.go
// (including paid orders), waitlist.go, progress.go, members.go (members
// who leave), quizzes.go, assignments.go (and rubrics), submissions.go (and
// appeals), certificates.go, demo.go. The contract is docs/courses.md.
package courses
