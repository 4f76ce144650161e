package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	webpush "github.com/SherClockHolmes/webpush-go"
	"github.com/jackc/pgx/v5"
)

// Web push (RFC 8030, payloads encrypted per RFC 8291 aes128gcm, VAPID per
// RFC 8292) through github.com/SherClockHolmes/webpush-go. Its quirks,
// handled here: it always signs the VAPID JWT with exp 12 hours ahead
// (VapidExpiration is ignored; 12 h is within the 24 h push services
// accept), and it prefixes the subscriber with "mailto:" unless it starts
// with "https:" — so a configured "mailto:ops@x" is passed without its
// scheme, or it would become "mailto:mailto:ops@x". It uses a plain
// http.Client unless given one: ours has a timeout, follows no redirect,
// and (unless the operator allows insecure endpoints) dials no loopback
// or private address, whatever a push endpoint's name resolves to.

// vapidKeys is the key pair pushes are signed with (base64url).
type vapidKeys struct{ public, private string }

// vapid is the operator's key pair, else the plugin's own (made once).
func (p *Plugin) vapid(ctx context.Context) (vapidKeys, error) {
	if p.op.VAPIDPublicKey != "" && p.op.VAPIDPrivateKey != "" {
		return vapidKeys{p.op.VAPIDPublicKey, p.op.VAPIDPrivateKey}, nil
	}
	return p.ownVAPID, nil
}

// vapidSubscriber is the VAPID sub claim's value as webpush-go wants it.
func vapidSubscriber(subject string) string {
	return strings.TrimPrefix(subject, "mailto:")
}

// pushClient is the HTTP client pushes go out with.
func pushClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
				return fmt.Errorf("push endpoint address %s is not on the internet", host)
			}
			return nil
		}
	}
	return &http.Client{
		Timeout:       15 * time.Second,
		Transport:     &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 8, TLSHandshakeTimeout: 10 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// PushPayload is what a push carries (encrypted) to the service worker.
type PushPayload struct {
	NotificationID string `json:"notification_id"`
	Category       string `json:"category"`
	Title          string `json:"title"`
	Body           string `json:"body"`
	URL            string `json:"url,omitempty"`
	Critical       bool   `json:"critical,omitempty"`
}

// device is a subscription to push to.
type device struct {
	ID, UserID, Endpoint, P256dh, Auth string
}

// pushResult is what one push to one device got.
type pushResult struct {
	status    int  // the push service's HTTP status; 0: no answer
	gone      bool // 404/410: the subscription is over
	transient bool // worth trying again (429, 5xx, no answer)
	detail    string
}

// pushOne sends one push.
func (p *Plugin) pushOne(ctx context.Context, client *http.Client, keys vapidKeys, subject string, d device, payload []byte, urgent bool) pushResult {
	urgency := webpush.UrgencyNormal
	if urgent {
		urgency = webpush.UrgencyHigh
	}
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &webpush.Subscription{
		Endpoint: d.Endpoint, Keys: webpush.Keys{Auth: d.Auth, P256dh: d.P256dh},
	}, &webpush.Options{
		HTTPClient: client, Subscriber: vapidSubscriber(subject), VAPIDPublicKey: keys.public, VAPIDPrivateKey: keys.private,
		TTL: 24 * 60 * 60, Urgency: urgency,
	})
	if err != nil {
		var ne net.Error
		transient := errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "connect")
		return pushResult{transient: transient, detail: truncate(err.Error(), 300)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	r := pushResult{status: resp.StatusCode}
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		r.gone, r.detail = true, fmt.Sprintf("the push service answered %d: the subscription has ended", resp.StatusCode)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		r.transient, r.detail = true, fmt.Sprintf("the push service answered %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	default:
		r.detail = fmt.Sprintf("the push service refused it: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return r
}

// sendPushes pushes each piece of work to its person's devices, skipping
// the devices an earlier attempt reached, and removes the subscriptions
// their push service ended (only if they still hold the keys pushed to).
func (p *Plugin) sendPushes(ctx context.Context, tenant string, cfg Config, batch []*work, now time.Time) error {
	if len(batch) == 0 {
		return nil
	}
	keys, err := p.vapid(ctx)
	if err != nil {
		return err
	}
	client := p.pushClient
	if cfg.AllowInsecurePush {
		client = p.insecurePushClient
	}
	users := make([]string, 0, len(batch))
	ids := make([]string, 0, len(batch))
	for _, w := range batch {
		users = append(users, w.Recipient)
		ids = append(ids, w.NotificationID)
	}
	devices := map[string][]device{}
	done := map[string]bool{} // notification:device reached before
	err = p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, user_id::text, endpoint, p256dh, auth FROM devices WHERE user_id = ANY($1::uuid[]) ORDER BY created_at, id`, users)
		if err != nil {
			return err
		}
		var d device
		if _, err := pgx.ForEachRow(rows, []any{&d.ID, &d.UserID, &d.Endpoint, &d.P256dh, &d.Auth}, func() error {
			devices[d.UserID] = append(devices[d.UserID], d)
			return nil
		}); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT notification_id::text || ':' || device_id::text FROM push_attempts WHERE notification_id = ANY($1::uuid[]) AND status = 'sent'`, ids)
		if err != nil {
			return err
		}
		var k string
		_, err = pgx.ForEachRow(rows, []any{&k}, func() error { done[k] = true; return nil })
		return err
	})
	if err != nil {
		return err
	}
	type attempt struct {
		notification string
		d            device
		r            pushResult
	}
	var attempts []attempt
	for _, w := range batch {
		ds := devices[w.Recipient]
		payload, _ := json.Marshal(PushPayload{NotificationID: w.NotificationID, Category: string(w.Category), Title: w.Title,
			Body: truncate(w.Body, 500), URL: absolute(cfg, w.Link), Critical: w.Critical})
		var sent, gone, transient, failed int
		var lastDetail string
		for _, d := range ds {
			if done[w.NotificationID+":"+d.ID] {
				sent++
				continue
			}
			r := p.pushOne(ctx, client, keys, cfg.VAPIDSubject, d, payload, w.Critical)
			attempts = append(attempts, attempt{w.NotificationID, d, r})
			switch {
			case r.gone:
				gone++
			case r.transient:
				transient++
				lastDetail = r.detail
			case r.detail != "":
				failed++
				lastDetail = r.detail
			default:
				sent++
			}
		}
		switch {
		case len(ds) == 0:
			w.finish("suppressed", "no_device", "you have no push subscription (register one with POST /api/v1/notifications/devices)")
		case sent > 0:
			w.finish("sent", "delivered", pushSummary(sent, gone, transient, failed))
		case transient > 0:
			w.retry(cfg, now, lastDetail)
		case gone == len(ds):
			w.finish("suppressed", "devices_gone", fmt.Sprintf("every push subscription of yours has ended (%d removed)", gone))
		default:
			w.finish("failed", "push_refused", lastDetail)
		}
	}
	return p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		for _, a := range attempts {
			status := "sent"
			switch {
			case a.r.gone:
				status = "gone"
				// Only this endpoint, and only if it was not re-registered
				// (with new keys) since it was read.
				if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE id = $1 AND endpoint = $2 AND p256dh = $3 AND auth = $4`,
					a.d.ID, a.d.Endpoint, a.d.P256dh, a.d.Auth); err != nil {
					return err
				}
			case a.r.transient:
				continue // tried again with the delivery
			case a.r.detail != "":
				status = "failed"
			}
			if _, err := tx.Exec(ctx, `
				INSERT INTO push_attempts (tenant_id, notification_id, device_id, status, http_status, at) VALUES ($1, $2, $3, $4, $5, $6)
				ON CONFLICT (tenant_id, notification_id, device_id) DO UPDATE SET status = excluded.status, http_status = excluded.http_status, at = excluded.at`,
				tenant, a.notification, a.d.ID, status, a.r.status, now); err != nil {
				return err
			}
		}
		return nil
	})
}

func pushSummary(sent, gone, transient, failed int) string {
	s := fmt.Sprintf("pushed to %d device(s)", sent)
	if gone > 0 {
		s += fmt.Sprintf("; %d subscription(s) had ended and were removed", gone)
	}
	if transient+failed > 0 {
		s += fmt.Sprintf("; %d device(s) could not be reached", transient+failed)
	}
	return s
}
