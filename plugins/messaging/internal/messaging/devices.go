package messaging

import (
	"context"
	"encoding/base64"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Devices: a person's web push subscriptions (the browser's
// PushSubscription), one row per endpoint. Registering again updates the
// keys and last_seen_at (a browser re-registers on each visit); an
// endpoint that moves to another person (a shared computer) moves with
// it. A push service that answers 404 or 410 ends the subscription: the
// fan-out removes that endpoint, and only if it still holds the keys it
// was sent with. The device-culling job removes those not seen for
// device_stale_days.

// RegisterDevice is a PushSubscription as the browser gives it.
type RegisterDevice struct {
	Endpoint  string     `json:"endpoint" minLength:"9" maxLength:"2048" doc:"The push service URL (https)."`
	Keys      DeviceKeys `json:"keys"`
	UserAgent string     `json:"user_agent,omitempty" maxLength:"300" doc:"Shown in the device list."`
}

// DeviceKeys are the subscription's keys (base64url).
type DeviceKeys struct {
	P256dh string `json:"p256dh" minLength:"80" maxLength:"200" pattern:"^[A-Za-z0-9_=+/-]+$" doc:"The browser's P-256 public key (65 bytes, base64url)."`
	Auth   string `json:"auth" minLength:"16" maxLength:"100" pattern:"^[A-Za-z0-9_=+/-]+$" doc:"The authentication secret (16 bytes, base64url)."`
}

// Device is a registered subscription.
type Device struct {
	ID         string    `json:"id" format:"uuid"`
	Endpoint   string    `json:"endpoint"`
	UserAgent  string    `json:"user_agent"`
	CreatedAt  time.Time `json:"created_at"`
	LastSeenAt time.Time `json:"last_seen_at"`
}

// PushKey is the VAPID public key browsers subscribe with
// (applicationServerKey).
type PushKey struct {
	PublicKey string `json:"public_key" doc:"The VAPID public key, base64url: PushManager.subscribe's applicationServerKey."`
}

func (p *Plugin) deviceRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/notifications/devices", Permission: PermNotificationRead,
			Summary: "Register a web push subscription (again: updates it and last_seen_at); 201 when new, 200 when known",
			Request: RegisterDevice{}, Response: Device{}, Status: http.StatusCreated, Handler: p.registerDevice},
		{Method: "GET", Path: "/api/v1/notifications/devices", Permission: PermNotificationRead, Summary: "One's push subscriptions",
			Response: []Device{}, Handler: p.listDevices},
		{Method: "DELETE", Path: "/api/v1/notifications/devices/{device_id}", Permission: PermNotificationRead, Summary: "Remove one of one's push subscriptions",
			Status: http.StatusNoContent, Handler: p.deleteDevice},
		{Method: "GET", Path: "/api/v1/notifications/push-key", Permission: PermNotificationRead, Summary: "The VAPID public key to subscribe with",
			Response: PushKey{}, Handler: p.pushKey},
	}
}

// checkEndpoint refuses what the plugin should not POST to: anything but
// https, and (unless the operator allows it, for development) loopback
// and private addresses written as such.
func checkEndpoint(raw string, allowInsecure bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" {
		return invalid("invalid_endpoint", "endpoint", "must be an absolute https URL")
	}
	if allowInsecure {
		if u.Scheme != "https" && u.Scheme != "http" {
			return invalid("invalid_endpoint", "endpoint", "must be an http(s) URL")
		}
		return nil
	}
	if u.Scheme != "https" {
		return invalid("invalid_endpoint", "endpoint", "must be an https URL")
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return invalid("invalid_endpoint", "endpoint", "must be a push service on the internet")
	}
	if ip := net.ParseIP(host); ip != nil && (ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified()) {
		return invalid("invalid_endpoint", "endpoint", "must be a push service on the internet")
	}
	return nil
}

func decodeKey(s string) []byte {
	s = strings.TrimRight(strings.NewReplacer("+", "-", "/", "_").Replace(s), "=")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil
	}
	return b
}

func (p *Plugin) registerDevice(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	if !req.Principal.IsUser() {
		return nil, sdk.Errorf(sdk.ErrForbidden, "devices are a person's").WithCode("not_a_person")
	}
	var in RegisterDevice
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	cfg, err := p.config(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := checkEndpoint(in.Endpoint, cfg.AllowInsecurePush); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	if k := decodeKey(in.Keys.P256dh); len(k) != 65 || k[0] != 4 {
		bad = append(bad, sdk.FieldError{Field: "keys.p256dh", Message: "must be an uncompressed P-256 public key (65 bytes, base64url)"})
	}
	if k := decodeKey(in.Keys.Auth); len(k) != 16 {
		bad = append(bad, sdk.FieldError{Field: "keys.auth", Message: "must be 16 bytes, base64url"})
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	now := p.now()
	var d Device
	var created bool
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			INSERT INTO devices (tenant_id, id, user_id, endpoint, p256dh, auth, user_agent, created_at, last_seen_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
			ON CONFLICT (tenant_id, endpoint) DO UPDATE SET user_id = excluded.user_id, p256dh = excluded.p256dh, auth = excluded.auth,
				user_agent = excluded.user_agent, last_seen_at = excluded.last_seen_at
			RETURNING id::text, endpoint, user_agent, created_at, last_seen_at, xmax = 0`,
			req.Tenant(), newID(), req.Principal.UserID, in.Endpoint, in.Keys.P256dh, in.Keys.Auth, in.UserAgent, now).
			Scan(&d.ID, &d.Endpoint, &d.UserAgent, &d.CreatedAt, &d.LastSeenAt, &created)
	})
	if err != nil {
		return nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return sdk.JSON(status, d)
}

func (p *Plugin) listDevices(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	out := []Device{}
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, endpoint, user_agent, created_at, last_seen_at FROM devices WHERE user_id = $1 ORDER BY created_at, id`, req.Principal.UserID)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Device, error) {
			var d Device
			err := r.Scan(&d.ID, &d.Endpoint, &d.UserAgent, &d.CreatedAt, &d.LastSeenAt)
			return d, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = []Device{}
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) deleteDevice(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("device_id")
	if err != nil {
		return nil, err
	}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM devices WHERE id = $1 AND user_id = $2`, id, req.Principal.UserID)
		if err == nil && tag.RowsAffected() == 0 {
			return sdk.Errorf(sdk.ErrNotFound, "no device %s of yours", id)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func (p *Plugin) pushKey(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	k, err := p.vapid(ctx)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, PushKey{PublicKey: k.public})
}

// cullDevices removes the institution's subscriptions not seen for
// device_stale_days; part of the daily maintenance job.
func cullDevices(ctx context.Context, tx pgx.Tx, cfg Config, now time.Time) (int64, error) {
	tag, err := tx.Exec(ctx, `DELETE FROM devices WHERE last_seen_at < $1`, now.AddDate(0, 0, -cfg.DeviceStaleDays))
	return tag.RowsAffected(), err
}
