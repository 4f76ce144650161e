package courses

// Config is the plugin's configuration: Manifest.Config holds the
// defaults, the operator's config block in plugins.hcl sets them for the
// whole installation, and an institution's own configuration overrides
// them. sdk.Config[Config] reads the setting in force.
type Config struct {
	SelfEnrolment       bool   `json:"self_enrolment" doc:"Learners may enrol themselves in published courses (a course may override it)."`
	DefaultPassMark     int    `json:"default_pass_mark" minimum:"0" maximum:"100" doc:"Percentage a quiz or assignment needs unless it or its course sets one."`
	DefaultQuizAttempts int    `json:"default_quiz_attempts" minimum:"0" maximum:"100" doc:"Attempts allowed at a quiz that sets no limit; 0 is unlimited."`
	CertificateIssuer   string `json:"certificate_issuer" maxLength:"200" doc:"The issuer named on certificates; empty: the institution's ID."`
}
