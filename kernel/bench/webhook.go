package bench

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/labstack/echo/v4"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/edulure/edulure/sdk"
)

// The webhook intake row: Stripe's webhooks into the commerce plugin's
// public route, POST /api/v1/webhooks/stripe/{institution}, each a new
// event signed as Stripe signs (t=, v1=HMAC-SHA256 over "t.body"). The
// plugin reads the institution's signing secret from the kernel, checks
// the signature and its time, reads the event, and stores it with its
// processing event (commerce.webhook.received.v1) in one transaction
// before it answers 200; the stored events are then processed in the
// background, as in production.
//
// The baseline, in a plain Echo handler of its own process, does the same
// signature check and event read, and the same insert into the plugin's
// webhook_events table (row-level security, the plugin's role, one
// transaction), with the secret in memory and no processing event.

const (
	webhookSecret   = "whsec_bench_signing_secret"
	commerceDBRole  = "bench_plugin_commerce"
	commerceSchema  = "plugin_commerce"
	webhookAPIVer   = "2026-03-25.dahlia" // the release train of the plugin's stripe-go
	webhookEventFmt = `{"id":"evt_bench_%s_%d","object":"event","type":"customer.created","created":%d,"api_version":%q,"livemode":false,` +
		`"pending_webhooks":1,"data":{"object":{"id":"cus_bench%d","object":"customer","email":null}}}`
)

// webhookRows measures the intake through the kernel and the plugin
// against the baseline.
func (e *env) webhookRows(ctx context.Context) ([]Row, error) {
	if e.commerce == nil {
		e.printf("  the commerce plugin is not built: http.webhook_intake skipped")
		return nil, nil
	}
	version, err := manifestVersion(e.commerce.path)
	if err != nil {
		return nil, err
	}
	commerce := pluginEntry{name: "commerce", bin: *e.commerce, version: version}
	if err := e.reload(append(e.basePlugins(), commerce)...); err != nil {
		return nil, fmt.Errorf("loading the commerce plugin: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck
	if err := e.call("PUT", "/api/v1/tenant/plugins/commerce", e.tokens["admin"], map[string]any{
		"enabled": true, "config": map[string]any{"webhook_signing_secret": webhookSecret},
	}, 200, nil); err != nil {
		return nil, fmt.Errorf("setting the signing secret: %w", err)
	}
	perms, err := e.fetch("/api/v1/tenant/permissions", e.tokens["admin"], 200)
	if err != nil {
		return nil, err
	}
	base, err := e.startBaseline(perms, "-webhook-db", e.dbURL, "-webhook-secret", webhookSecret)
	if err != nil {
		return nil, err
	}
	defer base.p.stop()
	path := "/api/v1/webhooks/stripe/" + e.tenantID
	viaKernel, viaBaseline := webhookTargeter("k", e.url+path), webhookTargeter("b", base.url+path)
	// Both take a signed event and answer 200.
	for name, tr := range map[string]vegeta.Targeter{"the plugin": viaKernel, "the baseline": viaBaseline} {
		var t vegeta.Target
		if err := tr(&t); err != nil {
			return nil, err
		}
		if err := postOnce(t); err != nil {
			return nil, fmt.Errorf("%s's webhook intake: %w", name, err)
		}
	}
	res, err := e.best(e.opts.Rounds,
		load{name: "baseline webhook intake", conns: 64, dur: e.opts.Duration, status: 200, targeter: viaBaseline},
		load{name: "http.webhook_intake", conns: 64, dur: e.opts.Duration, status: 200, targeter: viaKernel},
	)
	if err != nil {
		return nil, err
	}
	return []Row{row("http.webhook_intake", res[1].RPS, "req/s",
		"the same signature check, event read and insert (RLS, the plugin's role, one transaction) in a plain Echo handler (64 connections)",
		res[0].RPS, ratioAtLeast(0.2))}, nil
}

// webhookTargeter makes a new Stripe event per request (a stored event ID
// is acknowledged without an insert), signed now.
func webhookTargeter(tag, url string) vegeta.Targeter {
	var n atomic.Int64
	run := strconv.FormatInt(time.Now().UnixNano(), 36) + tag
	return func(t *vegeta.Target) error {
		i := n.Add(1)
		now := time.Now().Unix()
		body := []byte(fmt.Sprintf(webhookEventFmt, run, i, now, webhookAPIVer, i))
		mac := hmac.New(sha256.New, []byte(webhookSecret))
		fmt.Fprintf(mac, "%d.", now)
		mac.Write(body)
		*t = vegeta.Target{Method: http.MethodPost, URL: url, Body: body, Header: http.Header{
			"Content-Type":     {"application/json"},
			"Stripe-Signature": {fmt.Sprintf("t=%d,v1=%s", now, hex.EncodeToString(mac.Sum(nil)))},
		}}
		return nil
	}
}

func postOnce(t vegeta.Target) error {
	req, err := http.NewRequest(t.Method, t.URL, strings.NewReader(string(t.Body)))
	if err != nil {
		return err
	}
	req.Header = t.Header
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		return fmt.Errorf("status %d: %.300s", res.StatusCode, b)
	}
	return nil
}

// webhookHandler is the baseline's intake.
type webhookHandler struct {
	db     *sdk.DB
	secret []byte
}

func newWebhookHandler(ctx context.Context, dbURL, secret string) (*webhookHandler, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = 4 // the plugin's pool: db_connections defaults to 4
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE "+commerceDBRole+"; SET search_path = "+commerceSchema)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &webhookHandler{db: &sdk.DB{Pool: pool}, secret: []byte(secret)}, nil
}

func (h *webhookHandler) serve(c echo.Context) error {
	ctx := c.Request().Context()
	body, err := io.ReadAll(io.LimitReader(c.Request().Body, 256<<10))
	if err != nil {
		return err
	}
	// The signature: t= and every v1=, within 5 minutes.
	var ts int64
	var sigs [][]byte
	for _, part := range strings.Split(c.Request().Header.Get("Stripe-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts, _ = strconv.ParseInt(v, 10, 64)
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	if d := time.Since(time.Unix(ts, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return c.JSON(http.StatusBadRequest, map[string]string{"code": "timestamp_outside_tolerance"})
	}
	mac := hmac.New(sha256.New, h.secret)
	fmt.Fprintf(mac, "%d.", ts)
	mac.Write(body)
	want, ok := mac.Sum(nil), false
	for _, s := range sigs {
		ok = ok || hmac.Equal(s, want)
	}
	if !ok {
		return c.JSON(http.StatusBadRequest, map[string]string{"code": "signature_mismatch"})
	}
	var ev struct {
		ID         string `json:"id"`
		Type       string `json:"type"`
		Created    int64  `json:"created"`
		APIVersion string `json:"api_version"`
		Livemode   bool   `json:"livemode"`
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" {
		return c.JSON(http.StatusBadRequest, map[string]string{"code": "malformed_event"})
	}
	dup := false
	err = h.db.InTenant(ctx, c.Param("endpoint"), func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO webhook_events (stripe_event_id, type, api_version, livemode, created, payload, source)
			VALUES ($1, $2, $3, $4, $5, $6, 'webhook') ON CONFLICT (tenant_id, stripe_event_id) DO NOTHING`,
			ev.ID, ev.Type, ev.APIVersion, ev.Livemode, ev.Created, body)
		dup = err == nil && tag.RowsAffected() == 0
		return err
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"received": true, "duplicate": dup, "event_id": ev.ID})
}
