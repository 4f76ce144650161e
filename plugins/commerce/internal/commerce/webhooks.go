package commerce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/stripe/stripe-go/v85"

	"github.com/edulure/edulure/sdk"
)

// WebhookBodyLimit is the largest webhook body the plugin takes (the
// kernel's own limit, 1 MiB by default, comes first). Stripe's events are a
// few KiB; the largest (an invoice with many lines) stay well under it.
const WebhookBodyLimit = 256 << 10

// WebhookAck is the answer to a webhook the plugin stored (or had stored
// already): Stripe needs a 2xx, nothing more.
type WebhookAck struct {
	Received  bool   `json:"received"`
	Duplicate bool   `json:"duplicate,omitempty" doc:"The event was received before: acknowledged and ignored."`
	EventID   string `json:"event_id" doc:"Stripe's event ID."`
}

func (p *Plugin) webhookRoutes() []sdk.Route {
	return []sdk.Route{{
		Method: "POST", Path: "/api/v1/webhooks/stripe/{endpoint}", Public: true,
		Summary: "Stripe's webhook for an institution ({endpoint} is its ID): a signed event is verified, stored and acknowledged, then processed out of the request. " +
			"400 for a missing, malformed or wrong signature, a timestamp outside the tolerance, malformed JSON or an API version the plugin cannot read; 404 for an endpoint that takes no webhooks; 413 over 256 KiB; 5xx only when storing failed.",
		Response: WebhookAck{},
		Handler:  p.webhook,
	}}
}

var errUnknownEndpoint = sdk.Errorf(sdk.ErrNotFound, "no Stripe webhook endpoint here: the institution does not exist, has the commerce plugin turned off, or has no webhook signing secret").WithCode("webhook_endpoint_unknown")

// webhook handles POST /api/v1/webhooks/stripe/{endpoint}, a public route:
// Stripe sends no token, so the kernel passes no institution; the endpoint
// names it, and the institution's signing secret proves the sender. In
// order, cheapest refusal first, and nothing is written before the last:
//
//  1. the endpoint: an institution ID, with the plugin enabled and a
//     signing secret set (404 otherwise, the same answer for each);
//  2. the body's size (413 over WebhookBodyLimit);
//  3. the signature (400: missing, malformed, no v1 matching, the signed
//     timestamp outside the tolerance either way);
//  4. the event: JSON of a Stripe event (400 malformed_event), in an API
//     version the plugin reads (400 unsupported_api_version);
//  5. stored, with the event that makes the plugin process it, in one
//     transaction; an event ID stored before is acknowledged as a duplicate
//     and ignored (replay protection). Only a failure to store answers 5xx,
//     which makes Stripe retry.
func (p *Plugin) webhook(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	tenant, ok := sdk.NormalizeUUID(req.Param("endpoint"))
	if !ok {
		return nil, errUnknownEndpoint
	}
	if len(req.Body) > WebhookBodyLimit {
		return nil, sdk.Errorf(sdk.ErrTooLarge, "a webhook body is at most %d bytes; this one has %d", WebhookBodyLimit, len(req.Body)).WithCode("webhook_too_large")
	}
	cfg, enabled, err := p.institutionConfig(ctx, tenant)
	if err != nil {
		e := sdk.Errorf(sdk.ErrUnavailable, "the institution's settings cannot be read now; retry").WithCode("settings_unavailable")
		e.RetryAfterSeconds = 5
		p.env.Logger.Error("reading settings for a webhook", "tenant_id", tenant, "error", err)
		return nil, e
	}
	if !enabled || cfg.WebhookSigningSecret == "" {
		return nil, errUnknownEndpoint
	}
	tolerance := time.Duration(cfg.WebhookToleranceSeconds) * time.Second
	if _, err := verifySignature(req.Header.Get("Stripe-Signature"), req.Body, cfg.WebhookSigningSecret, p.now(), tolerance); err != nil {
		var se *sigError
		errors.As(err, &se)
		return nil, sdk.Errorf(sdk.ErrBadRequest, "%s", se.detail).WithCode(se.code)
	}
	ev, stored, err := parseEvent(req.Body)
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrBadRequest, "the body is not a Stripe event: %v", err).WithCode("malformed_event")
	}
	if !apiVersionAccepted(ev.APIVersion) {
		return nil, sdk.Errorf(sdk.ErrBadRequest, "event %s is rendered in Stripe API version %q; the plugin reads %s (set the webhook endpoint's API version in Stripe)", ev.ID, ev.APIVersion, apiVersionWanted()).WithCode("unsupported_api_version")
	}
	dup, err := p.storeEvent(ctx, tenant, ev, stored, "webhook", req.RequestID)
	if err != nil {
		return nil, fmt.Errorf("storing Stripe event %s: %w", ev.ID, err)
	}
	return sdk.JSON(http.StatusOK, WebhookAck{Received: true, Duplicate: dup, EventID: ev.ID})
}

// apiVersionWanted names the API versions the plugin reads.
func apiVersionWanted() string {
	_, train, _ := strings.Cut(stripe.APIVersion, ".")
	return fmt.Sprintf("%s (or another version of the %s release)", stripe.APIVersion, train)
}

// storeEvent stores a Stripe event for the institution and publishes
// commerce.webhook.received.v1 in the same transaction, so that it is
// processed if and only if it was stored. An event stored before is a
// duplicate: nothing is written.
func (p *Plugin) storeEvent(ctx context.Context, tenant string, ev *stripeEvent, body []byte, source, requestID string) (duplicate bool, err error) {
	err = p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		var id string
		err := tx.QueryRow(ctx, `
			INSERT INTO webhook_events (stripe_event_id, type, api_version, livemode, created, payload, source)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (tenant_id, stripe_event_id) DO NOTHING
			RETURNING id`, ev.ID, ev.Type, ev.APIVersion, ev.Livemode, ev.Created, body, source).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			duplicate = true
			return nil
		}
		if err != nil {
			return err
		}
		return p.env.DB.Publish(ctx, tx, sdk.Outgoing{
			Type: EventWebhookReceived, TenantID: tenant, RequestID: requestID,
			Data: WebhookReceived{WebhookEventID: id, StripeEventID: ev.ID, Type: ev.Type},
		})
	})
	return duplicate, err
}

// stripeEvent is what the plugin reads of a Stripe event's envelope; the
// object is read by each type's handler (process.go).
type stripeEvent struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	Type       string `json:"type"`
	Created    int64  `json:"created"`
	APIVersion string `json:"api_version"`
	Livemode   bool   `json:"livemode"`
	Data       struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

var (
	eventIDPattern   = regexp.MustCompile(`^evt_[A-Za-z0-9_]{1,250}$`)
	eventTypePattern = regexp.MustCompile(`^[a-z0-9_.]{1,100}$`)
)

// parseEvent reads a Stripe event: one JSON object with an evt_ ID, a type,
// a creation time and a data.object that is a JSON object. It also returns
// the event as the plugin stores it: re-encoded, so that what Postgres
// refuses in a jsonb (invalid UTF-8, a lone surrogate) cannot fail the
// insert; a NUL character (\u0000), which jsonb cannot hold either, refuses
// the event.
func parseEvent(body []byte) (*stripeEvent, []byte, error) {
	if !utf8.Valid(body) {
		return nil, nil, errors.New("not UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("malformed JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, nil, errors.New("data after the JSON object")
	}
	if containsNUL(doc) {
		return nil, nil, errors.New("a NUL character (\\u0000)")
	}
	stored, err := json.Marshal(doc)
	if err != nil {
		return nil, nil, err
	}
	var ev stripeEvent
	if err := json.Unmarshal(stored, &ev); err != nil {
		return nil, nil, fmt.Errorf("not a Stripe event: %v", err)
	}
	switch {
	case ev.Object != "event":
		return nil, nil, errors.New(`"object" is not "event"`)
	case !eventIDPattern.MatchString(ev.ID):
		return nil, nil, errors.New(`"id" is not a Stripe event ID (evt_...)`)
	case !eventTypePattern.MatchString(ev.Type):
		return nil, nil, errors.New(`"type" is not an event type`)
	case ev.Created <= 0:
		return nil, nil, errors.New(`"created" is not a time`)
	case len(ev.Data.Object) == 0 || ev.Data.Object[0] != '{':
		return nil, nil, errors.New(`"data.object" is not an object`)
	case len(ev.APIVersion) > 40:
		return nil, nil, errors.New(`"api_version" is too long`)
	}
	return &ev, stored, nil
}

// containsNUL reports whether a decoded JSON value holds a NUL character
// in a string or an object key. The text \u0000 in a string (a
// backslash and five characters, encoded as "\\u0000") is no NUL:
// searching the encoded event for the escape refused such an event, and
// every one of Stripe's retries of it.
func containsNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		for _, e := range x {
			if containsNUL(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range x {
			if strings.IndexByte(k, 0) >= 0 || containsNUL(e) {
				return true
			}
		}
	}
	return false
}
