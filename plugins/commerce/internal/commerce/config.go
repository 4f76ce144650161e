package commerce

import (
	"context"
	"encoding/json"
	"fmt"
)

// Config is the plugin's configuration: Manifest.Config holds the
// defaults, the operator's block in plugins.hcl sets them for the whole
// installation, and an institution's own settings override them.
// sdk.Config[Config] reads the setting in force.
//
// The two Stripe credentials are secret settings (secret:"true"): the
// kernel seals them at rest and never shows them back. StripeAPIBase is
// the operator's alone: the plugin reads it from plugins.hcl and ignores an
// institution's value, so no institution can point the plugin's requests
// (with its key) at a host of its choosing.
type Config struct {
	StripeSecretKey         string    `json:"stripe_secret_key,omitempty" secret:"true" maxLength:"255" pattern:"^(sk|rk)_(test|live)_[A-Za-z0-9_]+$" doc:"The institution's Stripe secret (or restricted) key. A test-mode key (sk_test_...) takes test payments."`
	WebhookSigningSecret    string    `json:"webhook_signing_secret,omitempty" secret:"true" maxLength:"255" pattern:"^whsec_[A-Za-z0-9_]+$" doc:"The signing secret of the institution's Stripe webhook endpoint (whsec_...)."`
	Currency                string    `json:"currency" pattern:"^[a-z]{3}$" doc:"The institution's currency (ISO 4217, lowercase): new prices default to it."`
	TaxRates                []TaxRate `json:"tax_rates" maxItems:"300" doc:"Tax rates by the buyer's country, for the rate-table tax calculator."`
	DefaultCountry          string    `json:"default_country" pattern:"^([A-Z]{2})?$" doc:"The buyer's country when a checkout names none (ISO 3166-1 alpha-2); empty: no tax unless the checkout names a country."`
	SuccessURL              string    `json:"success_url" maxLength:"2000" pattern:"^https?://" doc:"Where Stripe sends the buyer after paying ({CHECKOUT_SESSION_ID} is replaced by Stripe). It grants nothing: only the verified webhook pays an order."`
	CancelURL               string    `json:"cancel_url" maxLength:"2000" pattern:"^https?://" doc:"Where Stripe sends a buyer who leaves the checkout."`
	CheckoutExpiryMinutes   int       `json:"checkout_expiry_minutes" minimum:"30" maximum:"1440" doc:"How long a checkout stays open (Stripe allows 30 minutes to 24 hours); a promo code redemption is held that long."`
	WebhookToleranceSeconds int       `json:"webhook_tolerance_seconds" minimum:"30" maximum:"600" doc:"How far a webhook's signed timestamp may be from now, either way."`
	StripeAPIBase           string    `json:"stripe_api_base,omitempty" maxLength:"200" pattern:"^https?://[^/?#]+$" doc:"Operators only (plugins.hcl): the Stripe API's base URL (stripe-mock in development); empty: https://api.stripe.com. An institution's value is ignored."`
}

// TaxRate is the tax rate of one country, in basis points (1900: 19%).
type TaxRate struct {
	Country string `json:"country" pattern:"^[A-Z]{2}$" doc:"ISO 3166-1 alpha-2, uppercase."`
	RateBPS int    `json:"rate_bps" minimum:"0" maximum:"10000" doc:"The rate in basis points: 1900 is 19%."`
}

// defaultConfig is Manifest.Config: the defaults of every setting.
var defaultConfig = Config{
	Currency:                "usd",
	TaxRates:                []TaxRate{},
	SuccessURL:              "http://localhost:8080/checkout/success?session_id={CHECKOUT_SESSION_ID}",
	CancelURL:               "http://localhost:8080/checkout/canceled",
	CheckoutExpiryMinutes:   60,
	WebhookToleranceSeconds: 300,
}

// configured reports, as a 409, that the institution has not set its
// Stripe secret key.
func (c Config) requireKey() error {
	if c.StripeSecretKey == "" {
		return errNotConfigured("stripe_secret_key")
	}
	return nil
}

// institutionConfig is the configuration in force for an institution, read
// from the kernel (a round trip): for the webhook route, which is public and
// so carries no institution's configuration. It layers the institution's
// settings over the operator's (OperatorConfig, which holds the defaults),
// as sdk.Config does, and reports whether the plugin is enabled there.
func (p *Plugin) institutionConfig(ctx context.Context, tenant string) (Config, bool, error) {
	raw, enabled, err := p.env.Host.TenantConfig(ctx, tenant)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading institution %s's settings: %w", tenant, err)
	}
	var cfg Config
	if err := json.Unmarshal(p.operatorJSON, &cfg); err != nil {
		return Config{}, false, err
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return Config{}, false, fmt.Errorf("institution %s's settings: %w", tenant, err)
		}
	}
	return cfg, enabled, nil
}

// taxRate is the rate (basis points) the institution's table gives a
// country, and whether the table lists it.
func (c Config) taxRate(country string) (int, bool) {
	for _, r := range c.TaxRates {
		if r.Country == country {
			return r.RateBPS, true
		}
	}
	return 0, false
}
