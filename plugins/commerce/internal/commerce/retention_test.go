package commerce_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// Retention of closed orders deletes the orders whose checkout expired or
// failed before the cutoff, with their items; paid and pending orders, a
// held buyer's, and another institution's stay; the dry run counts what
// the execution deletes.
func TestRetentionOfClosedOrders(t *testing.T) {
	b := newBundle(t)
	other := b.configure(t, nil)
	buyer, held := plugintest.NewID(), plugintest.NewID()
	now := time.Now().UTC()
	old, recent, cutoff := now.AddDate(-2, 0, 0), now.AddDate(0, -1, 0), now.AddDate(-1, 0, 0)
	seed := func(tenant, user, status string, closed *time.Time, n int) {
		t.Helper()
		require.NoError(t, b.h.InTenant(tenant, func(tx pgx.Tx) error {
			_, err := tx.Exec(context.Background(), `
				WITH o AS (
					INSERT INTO orders (user_id, status, mode, currency, amount_subtotal, amount_discount, amount_tax, amount_total, tax, created_at, closed_at)
					SELECT $1, $2, 'payment', 'eur', 100, 0, 0, 100, '{}', coalesce($3, now()), $3 FROM generate_series(1, $4)
					RETURNING id
				)
				INSERT INTO order_items (order_id, position, product_id, price_id, product_name, quantity, unit_amount, amount_subtotal, amount_discount, amount_tax, amount_total)
				SELECT id, 0, gen_random_uuid(), gen_random_uuid(), 'Course', 1, 100, 100, 0, 0, 100 FROM o`, user, status, closed, n)
			return err
		}))
	}
	seed(b.tenant, buyer, "expired", &old, 12)
	seed(b.tenant, buyer, "failed", &old, 3)
	seed(b.tenant, held, "expired", &old, 4)
	seed(b.tenant, buyer, "expired", &recent, 5)
	seed(b.tenant, buyer, "paid", nil, 6)
	seed(other, buyer, "expired", &old, 7)
	orders := func(tenant string) (o, items int) {
		t.Helper()
		require.NoError(t, b.h.DB().QueryRow(context.Background(), `SELECT (SELECT count(*) FROM plugin_commerce.orders WHERE tenant_id = $1),
			(SELECT count(*) FROM plugin_commerce.order_items WHERE tenant_id = $1)`, tenant).Scan(&o, &items))
		return o, items
	}

	req := sdk.RetentionRequest{TenantID: b.tenant, Class: "closed_orders", Cutoff: cutoff, Action: sdk.RetainDelete, DryRun: true, SampleLimit: 4,
		Holds: []sdk.RetentionHold{{Kind: sdk.HoldPerson, ID: held}}}
	dry, err := b.h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, int64(15), dry.Matched)
	require.Len(t, dry.SampleIDs, 4)
	req.DryRun = false
	run, err := b.h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, dry.Matched, run.Affected)
	o, items := orders(b.tenant)
	require.Equal(t, 4+5+6, o)
	require.Equal(t, 4+5+6, items, "items go with their order")
	o, _ = orders(other)
	require.Equal(t, 7, o, "another institution's orders are untouched")

	_, err = b.h.ApplyRetention(sdk.RetentionRequest{TenantID: b.tenant, Class: "closed_orders", Cutoff: cutoff, Action: sdk.RetainAnonymise})
	require.ErrorIs(t, err, sdk.ErrInvalid, "closed orders are deleted, not anonymised")
}
