package commerce

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Price is a price of a product. Like Stripe's, a price does not change
// once made: a new price replaces it, and the old one is turned off.
type Price struct {
	ID                     string    `json:"id" format:"uuid"`
	ProductID              string    `json:"product_id" format:"uuid"`
	Nickname               string    `json:"nickname,omitempty"`
	Currency               string    `json:"currency"`
	UnitAmount             int64     `json:"unit_amount" doc:"In the currency's minor unit (cents)."`
	Type                   string    `json:"type" enum:"one_time,recurring"`
	RecurringInterval      string    `json:"recurring_interval,omitempty" enum:"day,week,month,year"`
	RecurringIntervalCount int       `json:"recurring_interval_count,omitempty"`
	TrialDays              int       `json:"trial_days,omitempty"`
	TaxBehavior            string    `json:"tax_behavior" enum:"exclusive,inclusive"`
	Active                 bool      `json:"active"`
	CreatedAt              time.Time `json:"created_at"`
}

// CreatePrice is the body of POST /api/v1/products/{product_id}/prices.
type CreatePrice struct {
	Nickname               string `json:"nickname,omitempty" maxLength:"100"`
	Currency               string `json:"currency,omitempty" pattern:"^[a-z]{3}$" doc:"ISO 4217, lowercase; absent: the institution's currency setting."`
	UnitAmount             int64  `json:"unit_amount" minimum:"0" maximum:"99999999" doc:"In the currency's minor unit: 4900 is 49.00."`
	Type                   string `json:"type,omitempty" enum:"one_time,recurring" doc:"one_time (the default) or recurring."`
	RecurringInterval      string `json:"recurring_interval,omitempty" enum:"day,week,month,year" doc:"Required for a recurring price."`
	RecurringIntervalCount int    `json:"recurring_interval_count,omitempty" minimum:"1" maximum:"12" doc:"Every N intervals; 1 when absent."`
	TrialDays              int    `json:"trial_days,omitempty" minimum:"1" maximum:"730" doc:"A recurring price's free trial."`
	TaxBehavior            string `json:"tax_behavior,omitempty" enum:"exclusive,inclusive" doc:"exclusive (the default): tax is added on top; inclusive: the amount includes it."`
}

// PatchPrice is the body of PATCH /api/v1/prices/{price_id}.
type PatchPrice struct {
	Active bool `json:"active" doc:"false: off sale."`
}

func (p *Plugin) priceRoutes() []sdk.Route {
	return []sdk.Route{
		{
			Method: "POST", Path: "/api/v1/products/{product_id}/prices", Permission: PermCatalogueManage,
			Summary: "Add a price to a product: one-time or recurring, in minor units, with its tax behaviour.",
			Request: CreatePrice{}, Response: Price{}, Status: http.StatusCreated, Handler: p.createPrice,
		},
		{
			Method: "PATCH", Path: "/api/v1/prices/{price_id}", Permission: PermCatalogueManage,
			Summary: "Put a price on or off sale (a price's amount never changes: add a new one).",
			Request: PatchPrice{}, Response: Price{}, Handler: p.patchPrice,
		},
	}
}

const priceColumns = `id, product_id, nickname, currency, unit_amount, type, coalesce(recurring_interval, ''), coalesce(recurring_interval_count, 0),
	coalesce(trial_days, 0), tax_behavior, active, created_at`

func scanPrice(row pgx.Row) (*Price, error) {
	var pr Price
	err := row.Scan(&pr.ID, &pr.ProductID, &pr.Nickname, &pr.Currency, &pr.UnitAmount, &pr.Type, &pr.RecurringInterval, &pr.RecurringIntervalCount,
		&pr.TrialDays, &pr.TaxBehavior, &pr.Active, &pr.CreatedAt)
	pr.CreatedAt = pr.CreatedAt.UTC()
	return &pr, err
}

func loadPrice(ctx context.Context, tx pgx.Tx, id string) (*Price, error) {
	pr, err := scanPrice(tx.QueryRow(ctx, `SELECT `+priceColumns+` FROM prices WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no price %s", id)
	}
	return pr, err
}

// loadPrices fills the products' prices, oldest first.
func loadPrices(ctx context.Context, tx pgx.Tx, products []*Product, all bool) error {
	if len(products) == 0 {
		return nil
	}
	byID := map[string]*Product{}
	ids := make([]string, len(products))
	for i, pr := range products {
		byID[pr.ID], ids[i] = pr, pr.ID
	}
	rows, err := tx.Query(ctx, `SELECT `+priceColumns+` FROM prices WHERE product_id = ANY($1::uuid[]) AND (active OR $2) ORDER BY product_id, created_at, id`, ids, all)
	if err != nil {
		return err
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Price, error) { return scanPrice(r) })
	if err != nil {
		return err
	}
	for _, pr := range list {
		byID[pr.ProductID].Prices = append(byID[pr.ProductID].Prices, *pr)
	}
	return nil
}

func (p *Plugin) createPrice(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	productID, err := req.UUIDParam("product_id")
	if err != nil {
		return nil, err
	}
	var in CreatePrice
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Type == "" {
		in.Type = "one_time"
	}
	if in.TaxBehavior == "" {
		in.TaxBehavior = "exclusive"
	}
	var interval *string
	var count, trial *int
	switch in.Type {
	case "recurring":
		if in.RecurringInterval == "" {
			return nil, sdk.Invalid(sdk.FieldError{Field: "recurring_interval", Message: "is required for a recurring price"})
		}
		if in.RecurringIntervalCount == 0 {
			in.RecurringIntervalCount = 1
		}
		interval, count, trial = &in.RecurringInterval, &in.RecurringIntervalCount, zeroNull(in.TrialDays)
	default:
		for field, set := range map[string]bool{"recurring_interval": in.RecurringInterval != "", "recurring_interval_count": in.RecurringIntervalCount != 0, "trial_days": in.TrialDays != 0} {
			if set {
				return nil, sdk.Invalid(sdk.FieldError{Field: field, Message: "goes with a recurring price only"})
			}
		}
	}
	currency := in.Currency
	if currency == "" {
		cfg, err := sdk.Config[Config](ctx, req)
		if err != nil {
			return nil, err
		}
		currency = cfg.Currency
	}
	var out *Price
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		pr, err := loadProduct(ctx, tx, productID, true)
		if err != nil {
			return err
		}
		if pr.Status != "active" {
			return sdk.Errorf(sdk.ErrConflict, "product %s is archived", productID).WithCode("product_archived")
		}
		var id string
		err = tx.QueryRow(ctx, `INSERT INTO prices (product_id, nickname, currency, unit_amount, type, recurring_interval, recurring_interval_count, trial_days, tax_behavior, created_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id`,
			productID, strings.TrimSpace(in.Nickname), currency, in.UnitAmount, in.Type, interval, count, trial, in.TaxBehavior, req.Principal.ID()).Scan(&id)
		if err != nil {
			return err
		}
		out, err = loadPrice(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

func (p *Plugin) patchPrice(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("price_id")
	if err != nil {
		return nil, err
	}
	var in PatchPrice
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var out *Price
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE prices SET active = $2, updated_at = now() WHERE id = $1`, id, in.Active)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return sdk.Errorf(sdk.ErrNotFound, "no price %s", id)
		}
		out, err = loadPrice(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
