package governance

import "github.com/edulure/edulure/sdk"

func (p *Plugin) capabilities() []sdk.Capability {
	return []sdk.Capability{sdk.CapStorage, sdk.CapRetention, sdk.CapGrants, sdk.CapSign}
}
func (p *Plugin) erasureRoutes() []sdk.Route { return nil }
func (p *Plugin) subscriptions() []sdk.Subscription {
	return nil
}
