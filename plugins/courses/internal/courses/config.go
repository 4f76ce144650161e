package courses

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"unicode/utf8"

	"github.com/edulure/edulure/sdk"
)

// Config is the plugin's configuration (configSchema). The operator's
// config block in plugins.hcl sets defaults for the whole installation; an
// institution's own configuration overrides them.
type Config struct {
	// SelfEnrolment lets learners enrol themselves in published courses
	// (a course may override it).
	SelfEnrolment bool `json:"self_enrolment"`
	// DefaultPassMark is the percentage a quiz or assignment needs unless
	// it or its course sets one.
	DefaultPassMark int `json:"default_pass_mark"`
	// DefaultQuizAttempts limits attempts at a quiz that sets no limit
	// (0: unlimited).
	DefaultQuizAttempts int `json:"default_quiz_attempts"`
	// CertificateIssuer names the issuer on certificates ("" : the
	// institution's ID is the issuer).
	CertificateIssuer string `json:"certificate_issuer"`
}

var schemaDefaults = Config{SelfEnrolment: true, DefaultPassMark: 70, DefaultQuizAttempts: 3}

var configSchema = json.RawMessage(`{
	"type": "object",
	"additionalProperties": false,
	"properties": {
		"self_enrolment": {"type": "boolean", "default": true, "description": "Learners may enrol themselves in published courses."},
		"default_pass_mark": {"type": "integer", "minimum": 0, "maximum": 100, "default": 70, "description": "Percentage a quiz or assignment needs unless it sets its own."},
		"default_quiz_attempts": {"type": "integer", "minimum": 0, "maximum": 100, "default": 3, "description": "Attempts allowed at a quiz that sets no limit; 0 is unlimited."},
		"certificate_issuer": {"type": "string", "maxLength": 200, "default": "", "description": "The issuer named on certificates."}
	}
}`)

// parseConfig reads raw (a JSON object) over base and checks it as
// configSchema does.
func parseConfig(base Config, raw json.RawMessage) (Config, error) {
	c := base
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c); err != nil {
			return Config{}, fmt.Errorf("must be an object with self_enrolment, default_pass_mark, default_quiz_attempts and certificate_issuer: %w", err)
		}
	}
	switch {
	case c.DefaultPassMark < 0 || c.DefaultPassMark > 100:
		return Config{}, fmt.Errorf("default_pass_mark: must be between 0 and 100, not %d", c.DefaultPassMark)
	case c.DefaultQuizAttempts < 0 || c.DefaultQuizAttempts > 100:
		return Config{}, fmt.Errorf("default_quiz_attempts: must be between 0 and 100, not %d", c.DefaultQuizAttempts)
	case utf8.RuneCountInString(c.CertificateIssuer) > 200:
		return Config{}, fmt.Errorf("certificate_issuer: must be at most 200 characters")
	}
	return c, nil
}

// config is the configuration in force for the request's institution. The
// kernel has validated the institution's part against configSchema.
func (p *Plugin) config(req *sdk.Request) (Config, error) {
	c, err := parseConfig(p.defaults, req.Config)
	if err != nil {
		return Config{}, fmt.Errorf("reading the institution's configuration: %w", err)
	}
	return c, nil
}

// tenantConfig is the configuration in force for an institution outside a
// request (an event, a job), read from the kernel, and whether the plugin
// is enabled there.
func (p *Plugin) tenantConfig(ctx context.Context, tenantID string) (Config, bool, error) {
	raw, enabled, err := p.env.Host.TenantConfig(ctx, tenantID)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading the configuration of institution %s: %w", tenantID, err)
	}
	c, err := parseConfig(p.defaults, raw)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading the configuration of institution %s: %w", tenantID, err)
	}
	return c, enabled, nil
}
