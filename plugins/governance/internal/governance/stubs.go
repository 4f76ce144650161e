package governance

import "github.com/edulure/edulure/sdk"

func (p *Plugin) capabilities() []sdk.Capability { return []sdk.Capability{sdk.CapStorage} }
func (p *Plugin) retentionRoutes() []sdk.Route   { return nil }
func (p *Plugin) reviewRoutes() []sdk.Route      { return nil }
func (p *Plugin) erasureRoutes() []sdk.Route     { return nil }
func (p *Plugin) subscriptions() []sdk.Subscription {
	return nil
}
func (p *Plugin) jobs() []sdk.Job { return nil }

var publishedEvents []sdk.EventType
