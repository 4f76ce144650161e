package messaging

import (
	"net/mail"
	"strings"
	"time"
)

// Config is the plugin's configuration: Manifest.Config holds the
// defaults, the operator's block in plugins.hcl sets them for the whole
// installation, and each institution's own settings override them
// (sdk.Config[Config]). The settings marked "operator" are read from the
// operator's layer only (sdk.OperatorConfig): an institution's value for
// them is ignored, since they govern the installation (its capacity, which
// servers it may reach, its keys).
type Config struct {
	// Links and branding.
	AppURL      string `json:"app_url" maxLength:"300" pattern:"^https?://[^\\s]+$" doc:"The web app's base URL: links in messages point under it (the invitation's /accept-invitation?token=..., a post's /spaces/{space}/posts/{post})."`
	APIURL      string `json:"api_url" maxLength:"300" pattern:"^https?://[^\\s]+$" doc:"This API's public base URL, for the one-click unsubscribe link (RFC 8058 wants https; over plain http the List-Unsubscribe-Post header is left out)."`
	BrandName   string `json:"brand_name" maxLength:"100" doc:"The institution's name in messages; empty: the name the kernel gives it."`
	BrandColor  string `json:"brand_color" pattern:"^#[0-9a-fA-F]{6}$" doc:"The accent colour of HTML email."`
	LogoURL     string `json:"logo_url,omitempty" maxLength:"300" pattern:"^https://[^\\s]+$" doc:"An https image shown at the top of HTML email."`
	Footer      string `json:"footer,omitempty" maxLength:"500" doc:"A line at the foot of every email (a postal address, for instance)."`
	SenderName  string `json:"sender_name" maxLength:"100" doc:"The From name of email; empty: the brand name."`
	SenderEmail string `json:"sender_email" maxLength:"254" pattern:"^[^@\\s]+@[^@\\s]+$" doc:"The From address of email."`
	ReplyTo     string `json:"reply_to,omitempty" maxLength:"254" pattern:"^[^@\\s]+@[^@\\s]+$" doc:"The Reply-To address of email; empty: none."`

	// When people are reached.
	TimeZone   string           `json:"time_zone" maxLength:"64" doc:"The time zone of people who set none (an IANA name: Europe/Paris)."`
	DigestHour int              `json:"digest_hour" minimum:"0" maximum:"23" doc:"The local hour daily digests go out, for people who set none."`
	QuietHours string           `json:"quiet_hours,omitempty" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"Quiet hours of people who set none, local time (22:00-07:00): email and push wait until they end, critical messages excepted; empty: none."`
	Defaults   CategoryDefaults `json:"defaults" doc:"The institution's default per category and channel; a person's own choice overrides it."`

	// Community.
	PostBurst          int `json:"post_burst" minimum:"1" maximum:"1000" doc:"Posts one person may make in a space within burst_window_seconds."`
	CommentBurst       int `json:"comment_burst" minimum:"1" maximum:"1000" doc:"Comments and reactions one person may make in a space within burst_window_seconds."`
	BurstWindowSeconds int `json:"burst_window_seconds" minimum:"1" maximum:"86400" doc:"The window of post_burst and comment_burst."`
	AttachmentMaxBytes int `json:"attachment_max_bytes" minimum:"1" maximum:"1073741824" doc:"The largest attachment."`

	// Sending, per institution.
	EmailPerMinute  int    `json:"email_per_minute" minimum:"0" maximum:"100000" doc:"Emails the institution may send per minute; 0: no limit of its own."`
	PushPerMinute   int    `json:"push_per_minute" minimum:"0" maximum:"100000" doc:"Pushes the institution may send per minute; 0: no limit of its own."`
	MaxAttempts     int    `json:"max_attempts" minimum:"1" maximum:"50" doc:"Attempts at a delivery that fails for a passing reason before it is recorded as failed."`
	SMTPHost        string `json:"smtp_host,omitempty" maxLength:"253" doc:"The SMTP server (operator; an institution's own only when the operator allows institution_smtp)."`
	SMTPPort        int    `json:"smtp_port,omitempty" minimum:"1" maximum:"65535" doc:"Its port."`
	SMTPSecurity    string `json:"smtp_security,omitempty" enum:"none,starttls,tls" doc:"none: plain (a local catcher); starttls: upgrade, required; tls: TLS from the start (port 465)."`
	SMTPUsername    string `json:"smtp_username,omitempty" maxLength:"200" doc:"The SMTP login; empty: none."`
	SMTPPassword    string `json:"smtp_password,omitempty" secret:"true" maxLength:"500" doc:"The SMTP password."`
	WebhookKey      string `json:"webhook_signing_key,omitempty" secret:"true" maxLength:"200" doc:"The key the mail provider signs its bounce and complaint webhooks with (POST /api/v1/webhooks/messaging/{tenant_id})."`
	DeviceStaleDays int    `json:"device_stale_days" minimum:"1" maximum:"3650" doc:"Push subscriptions not seen for this many days are removed."`

	// The installation's (operator only).
	InstitutionSMTP    bool   `json:"institution_smtp,omitempty" doc:"Operator: institutions may use an SMTP server of their own (smtp_* of their settings)."`
	ChannelEmailPerMin int    `json:"channel_email_per_minute" minimum:"0" maximum:"1000000" doc:"Operator: emails per minute for every institution together, shared fairly between those waiting; 0: no limit."`
	ChannelPushPerMin  int    `json:"channel_push_per_minute" minimum:"0" maximum:"1000000" doc:"Operator: pushes per minute for every institution together, shared fairly; 0: no limit."`
	VAPIDPublicKey     string `json:"vapid_public_key,omitempty" maxLength:"200" pattern:"^[A-Za-z0-9_-]+=*$" doc:"Operator: the VAPID public key (base64url); with its private key. Unset: a pair derived from the kernel's secret key."`
	VAPIDPrivateKey    string `json:"vapid_private_key,omitempty" secret:"true" maxLength:"200" doc:"Operator: the VAPID private key (base64url)."`
	VAPIDSubject       string `json:"vapid_subject" maxLength:"200" pattern:"^(mailto:[^\\s]+|https://[^\\s]+)$" doc:"Operator: who push services contact about our pushes (mailto: or https:)."`
	AllowInsecurePush  bool   `json:"allow_insecure_push_endpoints,omitempty" doc:"Operator: accept http:// and loopback push endpoints (development and tests only)."`
	SMTPConnections    int    `json:"smtp_connections" minimum:"1" maximum:"64" doc:"Operator: SMTP connections one fan-out run keeps open at once."`
	UnsubscribeKey     string `json:"unsubscribe_key,omitempty" secret:"true" minLength:"32" maxLength:"200" doc:"Operator: the key unsubscribe links are signed with; unset: one derived from the kernel's secret key (links then change when it is rotated)."`
}

// CategoryDefaults are an institution's defaults per category (the
// configurable ones; security is critical and always on).
type CategoryDefaults struct {
	Announcements ChannelModes `json:"announcements,omitzero"`
	Mentions      ChannelModes `json:"mentions,omitzero"`
	Replies       ChannelModes `json:"replies,omitzero"`
	Grades        ChannelModes `json:"grades,omitzero"`
	Enrolment     ChannelModes `json:"enrolment,omitzero"`
	Certificates  ChannelModes `json:"certificates,omitzero"`
	Billing       ChannelModes `json:"billing,omitzero"`
}

// ChannelModes is a mode per channel; empty: not set at this level.
type ChannelModes struct {
	Email Mode `json:"email,omitempty" enum:"off,immediate,digest"`
	Push  Mode `json:"push,omitempty" enum:"off,immediate"`
	InApp Mode `json:"in_app,omitempty" enum:"off,immediate"`
}

func (m ChannelModes) of(ch Channel) Mode {
	switch ch {
	case Email:
		return m.Email
	case Push:
		return m.Push
	default:
		return m.InApp
	}
}

func (d CategoryDefaults) of(c Category) ChannelModes {
	switch c {
	case CatAnnouncements:
		return d.Announcements
	case CatMentions:
		return d.Mentions
	case CatReplies:
		return d.Replies
	case CatGrades:
		return d.Grades
	case CatEnrolment:
		return d.Enrolment
	case CatCertificates:
		return d.Certificates
	case CatBilling:
		return d.Billing
	}
	return ChannelModes{}
}

// defaultConfig is Manifest.Config: the defaults of every setting.
func defaultConfig() Config {
	return Config{
		AppURL: "http://localhost:8080", APIURL: "http://localhost:8080", BrandColor: "#2f5bea",
		SenderEmail: "no-reply@edulure.test", TimeZone: "UTC", DigestHour: 8,
		PostBurst: 5, CommentBurst: 30, BurstWindowSeconds: 60, AttachmentMaxBytes: 25 << 20,
		EmailPerMinute: 600, PushPerMinute: 1200, MaxAttempts: 8, DeviceStaleDays: 90,
		SMTPHost: "127.0.0.1", SMTPPort: 1025, SMTPSecurity: "none",
		VAPIDSubject: "mailto:no-reply@edulure.test", SMTPConnections: 2,
	}
}

// withOperator returns c with the operator-only settings taken from op.
func (c Config) withOperator(op Config) Config {
	c.InstitutionSMTP, c.ChannelEmailPerMin, c.ChannelPushPerMin = op.InstitutionSMTP, op.ChannelEmailPerMin, op.ChannelPushPerMin
	c.VAPIDPublicKey, c.VAPIDPrivateKey, c.VAPIDSubject = op.VAPIDPublicKey, op.VAPIDPrivateKey, op.VAPIDSubject
	c.AllowInsecurePush, c.SMTPConnections, c.UnsubscribeKey = op.AllowInsecurePush, op.SMTPConnections, op.UnsubscribeKey
	if !op.InstitutionSMTP {
		c.SMTPHost, c.SMTPPort, c.SMTPSecurity, c.SMTPUsername, c.SMTPPassword = op.SMTPHost, op.SMTPPort, op.SMTPSecurity, op.SMTPUsername, op.SMTPPassword
	}
	return c
}

// location is the institution's default time zone (UTC when it names
// none the system knows).
func (c Config) location() *time.Location {
	return loadLocation(c.TimeZone)
}

func loadLocation(name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.UTC
	}
	return loc
}

// quiet is the institution's default quiet hours in minutes after
// midnight; ok is false when it sets none.
func (c Config) quiet() (start, end int, ok bool) {
	return parseQuiet(c.QuietHours)
}

func parseQuiet(s string) (start, end int, ok bool) {
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, ok1 := parseClock(a)
	end, ok2 := parseClock(b)
	return start, end, ok1 && ok2 && start != end
}

// parseClock reads HH:MM as minutes after midnight.
func parseClock(s string) (int, bool) {
	t, err := time.Parse("15:04", strings.TrimSpace(s))
	if err != nil {
		return 0, false
	}
	return t.Hour()*60 + t.Minute(), true
}

func formatClock(m int) string {
	return time.Date(2000, 1, 1, m/60, m%60, 0, 0, time.UTC).Format("15:04")
}

// brand is the name the institution signs with.
func (c Config) brand(fallback string) string {
	if c.BrandName != "" {
		return c.BrandName
	}
	if fallback != "" {
		return fallback
	}
	return "Edulure"
}

// from is the From address of the institution's email.
func (c Config) from(fallback string) *mail.Address {
	name := c.SenderName
	if name == "" {
		name = c.brand(fallback)
	}
	return &mail.Address{Name: name, Address: c.SenderEmail}
}
