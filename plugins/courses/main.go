// Command courses is Edulure's courses plugin: catalogue, authoring,
// cohorts, enrolment, progress, assessments and certificates. The kernel
// starts it; see README.md.
package main

import (
	"github.com/edulure/edulure/sdk"

	"github.com/edulure/edulure/plugins/courses/internal/courses"
)

func main() { sdk.Serve(courses.New) }
