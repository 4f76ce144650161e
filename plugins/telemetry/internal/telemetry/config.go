package telemetry

import "time"

// Config is the plugin's configuration: Manifest.Config holds the defaults,
// the operator's block in plugins.hcl sets them for the installation, and
// an institution's own settings override both (sdk.Config[Config]).
type Config struct {
	IngestionEnabled bool `json:"ingestion_enabled" doc:"Statements are accepted (off: POST /telemetry/events answers 409 ingestion_disabled, platform events are not recorded)."`
	// AllowedSources are the server-side sources (an LMS sync, a mobile
	// backend) that may send statements for the institution's members;
	// the seed's TELEMETRY_ALLOWED_SOURCES.
	AllowedSources []string `json:"allowed_sources" maxItems:"50" pattern:"^[a-z][a-z0-9_.-]{0,62}$" doc:"Server-side sources allowed to send statements for any member (body field source)."`
	// DefaultGranted are the purposes for which a person who has decided
	// nothing counts as consenting (opt-out); every other purpose needs a
	// grant (opt-in).
	DefaultGranted []string `json:"default_granted" maxItems:"20" pattern:"^[a-z][a-z0-9_]{0,39}$" doc:"Purposes a person who has decided nothing consents to by default (opt-out); others need a grant."`
	// DefaultPurpose is the purpose of batches that name none and of the
	// platform's own events (courses).
	DefaultPurpose string `json:"default_purpose" pattern:"^[a-z][a-z0-9_]{0,39}$" doc:"The purpose of statements whose batch names none, and of statements made from platform events."`
	// AccountHomePage is the homePage of every actor's account: the
	// account's name is the person's Edulure user ID.
	AccountHomePage  string `json:"account_home_page" maxLength:"200" pattern:"^https?://" doc:"The homePage of the actor accounts the institution's statements name (account.name is the user ID)."`
	MaxPastDays      int    `json:"max_past_days" minimum:"1" maximum:"365" doc:"A statement whose timestamp is more than this many days old is refused (timestamp_too_old)."`
	MaxFutureSeconds int    `json:"max_future_seconds" minimum:"0" maximum:"3600" doc:"A statement whose timestamp is more than this many seconds ahead of the server's clock is refused (timestamp_in_future)."`
	// RetentionDays is read from the operator's layer only: partitions are
	// shared by every institution.
	RetentionDays int `json:"retention_days" minimum:"1" maximum:"3650" doc:"Operator setting: statements stored longer ago than this are dropped with their day's partition (an institution's value is ignored)."`
}

// defaults are Manifest.Config.
var defaults = Config{
	IngestionEnabled: true,
	AllowedSources:   []string{},
	DefaultGranted:   []string{},
	DefaultPurpose:   "analytics",
	AccountHomePage:  "https://edulure.dev",
	MaxPastDays:      30,
	MaxFutureSeconds: 300,
	RetentionDays:    400,
}

func (c Config) maxPast() time.Duration   { return time.Duration(c.MaxPastDays) * 24 * time.Hour }
func (c Config) maxFuture() time.Duration { return time.Duration(c.MaxFutureSeconds) * time.Second }

func (c Config) sourceAllowed(s string) bool {
	for _, a := range c.AllowedSources {
		if a == s {
			return true
		}
	}
	return false
}

func (c Config) grantsByDefault(purpose string) bool {
	for _, p := range c.DefaultGranted {
		if p == purpose {
			return true
		}
	}
	return false
}
