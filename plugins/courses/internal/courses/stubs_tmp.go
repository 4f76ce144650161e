package courses

// Temporary: each helper replaces its group's function in its own file and
// deletes the line here. This file must be gone before the issue closes.

import (
	"context"

	"github.com/edulure/edulure/sdk"
)

func (p *Plugin) catalogueRoutes() []sdk.Route    { return nil }
func (p *Plugin) prerequisiteRoutes() []sdk.Route { return nil }
func (p *Plugin) cohortRoutes() []sdk.Route       { return nil }
func (p *Plugin) enrolmentRoutes() []sdk.Route    { return nil }
func (p *Plugin) progressRoutes() []sdk.Route     { return nil }
func (p *Plugin) quizRoutes() []sdk.Route         { return nil }
func (p *Plugin) assignmentRoutes() []sdk.Route   { return nil }
func (p *Plugin) submissionRoutes() []sdk.Route   { return nil }
func (p *Plugin) certificateRoutes() []sdk.Route  { return nil }

func (p *Plugin) orderPaid(context.Context, *sdk.Event) error         { return nil }
func (p *Plugin) promoteWaitlist(context.Context, *sdk.JobRun) error  { return nil }
func (p *Plugin) promoteWaitlists(context.Context, *sdk.JobRun) error { return nil }
func (p *Plugin) issueCertificate(context.Context, *sdk.JobRun) error { return nil }
func (p *Plugin) demoContent(context.Context, *sdk.JobRun) error      { return nil }
