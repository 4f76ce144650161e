package commerce

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/edulure/edulure/sdk"
)

// Name is the plugin's name: its schema is plugin_commerce.
const Name = "commerce"

// Version is the plugin's own version, released independently of the
// kernel.
const Version = "0.1.0"

// Permissions the plugin introduces, with the roles that hold them unless
// an institution changes its roles.
const (
	PermCatalogueRead   = "commerce.catalogue.read"   // browse active products and prices
	PermCatalogueManage = "commerce.catalogue.manage" // products, prices, entitlements
	PermPromoManage     = "commerce.promo.manage"     // promo codes
	PermCheckout        = "commerce.checkout.create"  // buy: start a checkout
	PermOrderSelf       = "commerce.order.self"       // one's own orders, subscriptions, invoices; cancel one's subscription
	PermOrderManage     = "commerce.order.manage"     // every order, subscription and invoice of the institution
	PermOrderRefund     = "commerce.order.refund"     // refund orders (through Stripe)
	PermBillingManage   = "commerce.billing.manage"   // webhook failures and replay, reconciliation runs, anomalies
)

//go:embed migrations/*.sql
var migrations embed.FS

// Plugin is the commerce plugin.
type Plugin struct {
	env *sdk.Env
	// operatorJSON is the operator's layer of the configuration (over the
	// defaults), for the webhook route, which layers an institution's
	// settings over it itself.
	operatorJSON []byte
	stripe       *stripeAPI
	tax          TaxCalculator
	now          func() time.Time
}

var (
	_ sdk.Plugin      = (*Plugin)(nil)
	_ sdk.Provisioner = (*Plugin)(nil)
)

// Option changes how New builds the plugin.
type Option func(*Plugin)

// WithTaxCalculator replaces the default tax calculator (the rate table of
// the institution's settings, RateTable). See TaxCalculator.
func WithTaxCalculator(c TaxCalculator) Option { return func(p *Plugin) { p.tax = c } }

// New builds the plugin (lifecycle step 1: no I/O), as main.go serves it.
func New() *Plugin { return NewWith() }

// NewWith builds the plugin with options: a build with another tax
// calculator serves func() *Plugin { return NewWith(WithTaxCalculator(mine)) }.
func NewWith(opts ...Option) *Plugin {
	p := &Plugin{tax: RateTable{}, now: time.Now}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Manifest declares the plugin to the kernel.
func (p *Plugin) Manifest() sdk.Manifest {
	var routes []sdk.Route
	for _, group := range [][]sdk.Route{
		p.productRoutes(), p.priceRoutes(), p.promoRoutes(), p.checkoutRoutes(), p.orderRoutes(), p.refundRoutes(),
		p.subscriptionRoutes(), p.invoiceRoutes(), p.webhookRoutes(), p.failureRoutes(), p.reconciliationRoutes(),
	} {
		routes = append(routes, group...)
	}
	return sdk.Manifest{
		Name:        Name,
		Version:     Version,
		Description: "Commerce: catalogue, prices, promo codes, Stripe checkout, signed webhooks, subscriptions, invoices and reconciliation.",
		Permissions: []sdk.Permission{
			{Name: PermCatalogueRead, Description: "Browse the products and prices on sale.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermCatalogueManage, Description: "Create and change products, their prices and what they grant.", DefaultRoles: []string{"admin"}},
			{Name: PermPromoManage, Description: "Create and change promo codes.", DefaultRoles: []string{"admin"}},
			{Name: PermCheckout, Description: "Buy: start a Stripe checkout.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermOrderSelf, Description: "Read one's own orders, subscriptions and invoices; cancel one's subscription at the end of its period.", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: PermOrderManage, Description: "Read every order, subscription and invoice of the institution; cancel any subscription.", DefaultRoles: []string{"admin"}},
			{Name: PermOrderRefund, Description: "Refund orders through Stripe.", DefaultRoles: []string{"admin"}},
			{Name: PermBillingManage, Description: "Read and replay failed webhooks, run and read reconciliations, read billing anomalies.", DefaultRoles: []string{"admin"}},
		},
		Routes:       routes,
		Publishes:    publishedEvents,
		Subscribes:   p.subscriptions(),
		Jobs:         p.jobs(),
		Migrations:   migrations,
		Config:       defaultConfig,
		PersonalData: p.personalData(),
		Retention:    p.retention(),
	}
}

// Provision keeps the environment (lifecycle step 4) and reads the
// operator's settings: the Stripe API's base URL is theirs alone.
func (p *Plugin) Provision(_ context.Context, env *sdk.Env) error {
	if env.DB == nil {
		return errors.New("commerce needs its database")
	}
	p.env = env
	op, err := sdk.OperatorConfig[Config](env)
	if err != nil {
		return err
	}
	if p.operatorJSON, err = json.Marshal(op); err != nil {
		return err
	}
	p.stripe = newStripeAPI(op.StripeAPIBase, &http.Client{Timeout: 30 * time.Second})
	return nil
}
