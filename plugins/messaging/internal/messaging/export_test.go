package messaging

import "time"

// SetClock sets the plugin's clock (tests).
func (p *Plugin) SetClock(now func() time.Time) { p.clock = now }

// SignReport signs a provider's report (tests).
func SignReport(key string, r MailReport) string { return signReport(key, r) }
