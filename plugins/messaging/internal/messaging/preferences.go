package messaging

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Preferences: what reaches a person, on which channel, and when.
//
// A mode is resolved per category and channel, the first that applies:
//  1. a critical category (security, invitations): its own default, always
//     (nobody can turn it off);
//  2. the person's choice (the preferences API, a one-click unsubscribe, a
//     complaint) — an opt-out beats anything the institution set;
//  3. the institution's default for the category (its configuration,
//     defaults.<category>);
//  4. the category's built-in default.
//
// Quiet hours (the person's, else the institution's, in the person's time
// zone, else the institution's) hold email and push until they end;
// critical messages go at once. Digest (email only) collects the
// category's email into one message a day at the person's digest hour.

// prefSource says where a resolved mode came from.
type prefSource string

const (
	srcCritical    prefSource = "critical"
	srcPerson      prefSource = "person"
	srcUnsubscribe prefSource = "unsubscribe"
	srcComplaint   prefSource = "complaint"
	srcInstitution prefSource = "institution"
	srcDefault     prefSource = "default"
)

type prefKey struct {
	Category Category
	Channel  Channel
}

type pref struct {
	Mode   Mode
	Source prefSource
}

// resolveMode is the mode in force for a category on a channel.
func resolveMode(ci categoryInfo, ch Channel, inst CategoryDefaults, prefs map[prefKey]pref) (Mode, prefSource) {
	if ci.Critical {
		return ci.Defaults.of(ch), srcCritical
	}
	if pr, ok := prefs[prefKey{ci.Category, ch}]; ok {
		return pr.Mode, pr.Source
	}
	if m := inst.of(ci.Category).of(ch); m != "" && validMode(ch, m) {
		return m, srcInstitution
	}
	return ci.Defaults.of(ch), srcDefault
}

// personSettings are a person's own settings (zero values: the
// institution's).
type personSettings struct {
	TimeZone          string
	QuietStart        *int
	QuietEnd          *int
	DigestHour        *int
	EmailStatus       string
	EmailStatusReason string
	prefs             map[prefKey]pref
}

func (ps personSettings) location(cfg Config) *time.Location {
	if ps.TimeZone != "" {
		return loadLocation(ps.TimeZone)
	}
	return cfg.location()
}

func (ps personSettings) quiet(cfg Config) (start, end int, ok bool) {
	if ps.QuietStart != nil && ps.QuietEnd != nil {
		return *ps.QuietStart, *ps.QuietEnd, *ps.QuietStart != *ps.QuietEnd
	}
	return cfg.quiet()
}

func (ps personSettings) digestHour(cfg Config) int {
	if ps.DigestHour != nil {
		return *ps.DigestHour
	}
	return cfg.DigestHour
}

// quietUntil says whether t falls in the person's quiet hours, and when
// they end.
func quietUntil(t time.Time, ps personSettings, cfg Config) (time.Time, bool) {
	start, end, ok := ps.quiet(cfg)
	if !ok {
		return time.Time{}, false
	}
	loc := ps.location(cfg)
	local := t.In(loc)
	m := local.Hour()*60 + local.Minute()
	in := (start < end && m >= start && m < end) || (start > end && (m >= start || m < end))
	if !in {
		return time.Time{}, false
	}
	until := time.Date(local.Year(), local.Month(), local.Day(), end/60, end%60, 0, 0, loc)
	if !until.After(local) {
		until = time.Date(local.Year(), local.Month(), local.Day()+1, end/60, end%60, 0, 0, loc)
	}
	return until.UTC(), true
}

// nextDigest is the first digest hour of the person after t.
func nextDigest(t time.Time, ps personSettings, cfg Config) time.Time {
	loc := ps.location(cfg)
	local := t.In(loc)
	h := ps.digestHour(cfg)
	at := time.Date(local.Year(), local.Month(), local.Day(), h, 0, 0, 0, loc)
	if !at.After(local) {
		at = time.Date(local.Year(), local.Month(), local.Day()+1, h, 0, 0, 0, loc)
	}
	return at.UTC()
}

// recipient is what deciding a person's deliveries needs.
type recipient struct {
	known, active bool // in the directory's members; an active one
	Email, Name   string
	verified      bool // the address is proven its owner's
	settings      personSettings
}

// loadRecipients reads the directory entries, settings and choices of
// people of the transaction's institution.
func loadRecipients(ctx context.Context, tx pgx.Tx, userIDs []string) (map[string]*recipient, error) {
	out := map[string]*recipient{}
	for _, id := range userIDs {
		if id != "" && out[id] == nil {
			out[id] = &recipient{settings: personSettings{prefs: map[prefKey]pref{}}}
		}
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(out))
	for id := range out {
		ids = append(ids, id)
	}
	rows, err := tx.Query(ctx, `
		SELECT u.id::text, m.user_id IS NOT NULL, coalesce(m.active, false), coalesce(p.email, ''), coalesce(p.display_name, ''), coalesce(p.email_verified, false),
			coalesce(s.time_zone, ''), s.quiet_start, s.quiet_end, s.digest_hour, coalesce(s.email_status, 'ok'), coalesce(s.email_status_reason, '')
		FROM unnest($1::uuid[]) AS u(id)
		LEFT JOIN members m ON m.user_id = u.id
		LEFT JOIN people p ON p.user_id = u.id
		LEFT JOIN person_settings s ON s.user_id = u.id`, ids)
	if err != nil {
		return nil, err
	}
	var id string
	var r recipient
	var s personSettings
	if _, err := pgx.ForEachRow(rows, []any{&id, &r.known, &r.active, &r.Email, &r.Name, &r.verified, &s.TimeZone, &s.QuietStart, &s.QuietEnd, &s.DigestHour, &s.EmailStatus, &s.EmailStatusReason}, func() error {
		x := out[id]
		x.known, x.active, x.Email, x.Name, x.verified = r.known, r.active, r.Email, r.Name, r.verified
		prefs := x.settings.prefs
		x.settings = s
		x.settings.prefs = prefs
		s = personSettings{}
		return nil
	}); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, `SELECT user_id::text, category, channel, mode, source FROM preferences WHERE user_id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, err
	}
	var c, ch, mode, src string
	_, err = pgx.ForEachRow(rows, []any{&id, &c, &ch, &mode, &src}, func() error {
		out[id].settings.prefs[prefKey{Category(c), Channel(ch)}] = pref{Mode(mode), prefSource(src)}
		return nil
	})
	return out, err
}

// Preferences is a person's settings and the mode in force per category
// and channel, with where it comes from.
type Preferences struct {
	TimeZone   string               `json:"time_zone" doc:"The person's time zone, else the institution's."`
	QuietHours string               `json:"quiet_hours,omitempty" doc:"HH:MM-HH:MM in that time zone; empty: none."`
	DigestHour int                  `json:"digest_hour"`
	Email      string               `json:"email_status" enum:"ok,bounced,complained" doc:"What bounces and complaints said about the person's address: bounced and complained stop all but critical email."`
	Categories []CategoryPreference `json:"categories"`
}

// CategoryPreference is one category's modes.
type CategoryPreference struct {
	Category     string      `json:"category"`
	Description  string      `json:"description"`
	Critical     bool        `json:"critical" doc:"Cannot be turned off."`
	Configurable bool        `json:"configurable"`
	Email        ModeInForce `json:"email"`
	Push         ModeInForce `json:"push"`
	InApp        ModeInForce `json:"in_app"`
}

// ModeInForce is a resolved mode and its source.
type ModeInForce struct {
	Mode   string `json:"mode" enum:"off,immediate,digest"`
	Source string `json:"source" enum:"critical,person,unsubscribe,complaint,institution,default" doc:"Who decided: critical (always on), the person (person, unsubscribe, complaint), the institution, or the built-in default."`
}

// PreferencesUpdate changes a person's settings and choices.
type PreferencesUpdate struct {
	TimeZone   sdk.Optional[string] `json:"time_zone" maxLength:"64" doc:"An IANA time zone (Europe/Paris); null: the institution's."`
	QuietHours sdk.Optional[string] `json:"quiet_hours" pattern:"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$" doc:"HH:MM-HH:MM; null: the institution's."`
	DigestHour sdk.Optional[int]    `json:"digest_hour" minimum:"0" maximum:"23" doc:"null: the institution's."`
	Categories *CategoryChoices     `json:"categories,omitempty"`
}

// CategoryChoices are a person's choices per category; "default" drops a
// choice (the institution's default applies again).
type CategoryChoices struct {
	Security      *ChannelChoice `json:"security,omitempty" doc:"Critical: turning it off is refused."`
	Announcements *ChannelChoice `json:"announcements,omitempty"`
	Mentions      *ChannelChoice `json:"mentions,omitempty"`
	Replies       *ChannelChoice `json:"replies,omitempty"`
	Grades        *ChannelChoice `json:"grades,omitempty"`
	Enrolment     *ChannelChoice `json:"enrolment,omitempty"`
	Certificates  *ChannelChoice `json:"certificates,omitempty"`
	Billing       *ChannelChoice `json:"billing,omitempty"`
}

// ChannelChoice is a choice per channel.
type ChannelChoice struct {
	Email string `json:"email,omitempty" enum:"off,immediate,digest,default"`
	Push  string `json:"push,omitempty" enum:"off,immediate,default"`
	InApp string `json:"in_app,omitempty" enum:"off,immediate,default"`
}

func (c *CategoryChoices) list() map[Category]*ChannelChoice {
	return map[Category]*ChannelChoice{
		CatSecurity: c.Security, CatAnnouncements: c.Announcements, CatMentions: c.Mentions, CatReplies: c.Replies,
		CatGrades: c.Grades, CatEnrolment: c.Enrolment, CatCertificates: c.Certificates, CatBilling: c.Billing,
	}
}

func (p *Plugin) preferenceRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/notifications/preferences", Permission: PermNotificationRead, Summary: "One's notification settings and the mode in force per category and channel",
			Response: Preferences{}, Handler: p.getPreferences},
		{Method: "PUT", Path: "/api/v1/notifications/preferences", Permission: PermNotificationRead, Summary: "Change one's time zone, quiet hours, digest hour and choices per category and channel",
			Request: PreferencesUpdate{}, Response: Preferences{}, Handler: p.putPreferences},
	}
}

func (p *Plugin) getPreferences(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	var out Preferences
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		out, err = preferencesOf(ctx, tx, req.Principal.UserID, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func preferencesOf(ctx context.Context, tx pgx.Tx, userID string, cfg Config) (Preferences, error) {
	rs, err := loadRecipients(ctx, tx, []string{userID})
	if err != nil {
		return Preferences{}, err
	}
	ps := rs[userID].settings
	out := Preferences{TimeZone: ps.location(cfg).String(), DigestHour: ps.digestHour(cfg), Email: ps.EmailStatus, Categories: []CategoryPreference{}}
	if s, e, ok := ps.quiet(cfg); ok {
		out.QuietHours = formatClock(s) + "-" + formatClock(e)
	}
	for _, ci := range categories {
		if ci.Category == CatDigest || ci.Category == CatInvitations {
			continue
		}
		cp := CategoryPreference{Category: string(ci.Category), Description: ci.Description, Critical: ci.Critical, Configurable: ci.Configurable}
		for _, ch := range channels {
			m, src := resolveMode(ci, ch, cfg.Defaults, ps.prefs)
			v := ModeInForce{Mode: string(m), Source: string(src)}
			switch ch {
			case Email:
				cp.Email = v
			case Push:
				cp.Push = v
			default:
				cp.InApp = v
			}
		}
		out.Categories = append(out.Categories, cp)
	}
	return out, nil
}

func (p *Plugin) putPreferences(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in PreferencesUpdate
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	if tz, ok := in.TimeZone.Get(); ok {
		if _, err := time.LoadLocation(tz); err != nil || tz == "" || tz == "Local" {
			bad = append(bad, sdk.FieldError{Field: "time_zone", Message: "must be an IANA time zone such as Europe/Paris"})
		}
	}
	var qs, qe *int
	if q, ok := in.QuietHours.Get(); ok {
		s, e, ok := parseQuiet(q)
		if !ok {
			bad = append(bad, sdk.FieldError{Field: "quiet_hours", Message: "must be two different times, HH:MM-HH:MM"})
		}
		qs, qe = &s, &e
	}
	type change struct {
		c    Category
		ch   Channel
		mode string
	}
	var changes []change
	if in.Categories != nil {
		for c, choice := range in.Categories.list() {
			if choice == nil {
				continue
			}
			ci, _ := categoryOf(c)
			for ch, v := range map[Channel]string{Email: choice.Email, Push: choice.Push, InApp: choice.InApp} {
				if v == "" {
					continue
				}
				if ci.Critical && v != "default" && Mode(v) != ci.Defaults.of(ch) {
					bad = append(bad, sdk.FieldError{Field: fmt.Sprintf("categories.%s.%s", c, ch), Message: "is a critical category: it cannot be changed"})
					continue
				}
				changes = append(changes, change{c, ch, v})
			}
		}
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	var out Preferences
	now := p.now()
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if in.TimeZone.Set() || in.QuietHours.Set() || in.DigestHour.Set() {
			if _, err := tx.Exec(ctx, `INSERT INTO person_settings (tenant_id, user_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`, req.Tenant(), req.Principal.UserID); err != nil {
				return err
			}
			if in.TimeZone.Set() {
				tz, _ := in.TimeZone.Get()
				if _, err := tx.Exec(ctx, `UPDATE person_settings SET time_zone = $2, updated_at = $3 WHERE user_id = $1`, req.Principal.UserID, tz, now); err != nil {
					return err
				}
			}
			if in.QuietHours.Set() {
				if _, err := tx.Exec(ctx, `UPDATE person_settings SET quiet_start = $2, quiet_end = $3, updated_at = $4 WHERE user_id = $1`, req.Principal.UserID, qs, qe, now); err != nil {
					return err
				}
			}
			if in.DigestHour.Set() {
				if _, err := tx.Exec(ctx, `UPDATE person_settings SET digest_hour = $2, updated_at = $3 WHERE user_id = $1`, req.Principal.UserID, in.DigestHour.Ptr(), now); err != nil {
					return err
				}
			}
		}
		for _, c := range changes {
			if err := setPreference(ctx, tx, req.Tenant(), req.Principal.UserID, c.c, c.ch, c.mode, srcPerson, now); err != nil {
				return err
			}
		}
		out, err = preferencesOf(ctx, tx, req.Principal.UserID, cfg)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// setPreference records a person's choice ("default" drops it).
func setPreference(ctx context.Context, tx pgx.Tx, tenant, userID string, c Category, ch Channel, mode string, src prefSource, now time.Time) error {
	if mode == "default" {
		_, err := tx.Exec(ctx, `DELETE FROM preferences WHERE user_id = $1 AND category = $2 AND channel = $3`, userID, string(c), string(ch))
		return err
	}
	if !validMode(ch, Mode(mode)) {
		return errors.New("invalid mode " + mode + " for " + string(ch))
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO preferences (tenant_id, user_id, category, channel, mode, source, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (tenant_id, user_id, category, channel) DO UPDATE SET mode = excluded.mode, source = excluded.source, updated_at = excluded.updated_at`,
		tenant, userID, string(c), string(ch), mode, string(src), now)
	return err
}
