package messaging

import "time"

// SetClock sets the plugin's clock (tests).
func (p *Plugin) SetClock(now func() time.Time) { p.clock = now }
