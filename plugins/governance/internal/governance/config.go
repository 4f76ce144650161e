package governance

// Config is the plugin's configuration: Manifest.Config holds the
// defaults, the operator's config block in plugins.hcl sets them for the
// whole installation, and an institution's own configuration overrides
// them (the retention schedule is usually the institution's).
type Config struct {
	RetentionEnabled bool `json:"retention_enabled" doc:"DataRetentionJob runs on its schedule for the institution (DATA_RETENTION_ENABLED)."`
	// RetentionSchedule is read in RetentionTimeZone.
	RetentionSchedule string `json:"retention_schedule" maxLength:"100" pattern:"^\\S+( \\S+){4}$" doc:"When DataRetentionJob runs: a cron expression of five fields in the institution's time zone (DATA_RETENTION_CRON)."`
	RetentionTimeZone string `json:"retention_time_zone" minLength:"1" maxLength:"64" doc:"The institution's IANA time zone for the schedule, e.g. Europe/London (DATA_RETENTION_TIMEZONE)."`
	RetentionDryRun   bool   `json:"retention_dry_run" doc:"Scheduled runs count what they would do and change nothing (DATA_RETENTION_DRY_RUN)."`
	// RetentionMaxFailures is the attempts of one plugin's retention call
	// before it is reported failed.
	RetentionMaxFailures int `json:"retention_max_failures" minimum:"1" maximum:"10" doc:"Attempts of a plugin's retention call before the execution reports it failed (DATA_RETENTION_MAX_FAILURES)."`
	// RetentionFailureBackoffMs is the wait before the second attempt;
	// it doubles for each further one.
	RetentionFailureBackoffMs int `json:"retention_failure_backoff_ms" minimum:"0" maximum:"600000" doc:"Milliseconds before retrying a failed retention call, doubling each time (DATA_RETENTION_FAILURE_BACKOFF)."`
	// RetentionSampleLimit is how many sample IDs a dry run lists per class.
	RetentionSampleLimit int `json:"retention_sample_limit" minimum:"0" maximum:"100" doc:"Sample row IDs a dry run lists per data class."`
	// ReviewSchedule starts access review campaigns on its own, read in
	// RetentionTimeZone; "" starts none.
	ReviewSchedule string `json:"review_schedule" maxLength:"100" pattern:"^$|^\\S+( \\S+){4}$" doc:"When an access review campaign starts on its own: a cron expression of five fields in retention_time_zone (quarterly: 0 9 1 1,4,7,10 *); empty: never."`
	// UploadURLSeconds is how long an evidence upload URL works.
	UploadURLSeconds int `json:"upload_url_seconds" minimum:"60" maximum:"3600" doc:"Seconds an evidence upload URL stays valid."`
}

var defaultConfig = Config{
	RetentionEnabled:          true,
	RetentionSchedule:         "0 2 * * *",
	RetentionTimeZone:         "UTC",
	RetentionMaxFailures:      3,
	RetentionFailureBackoffMs: 30000,
	RetentionSampleLimit:      10,
	UploadURLSeconds:          900,
}
