package sdk_test

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// A subscription that takes its events in batches: one transaction per
// batch and institution, the batch deduplicated against the inbox in one
// statement, the rows written in one statement. It also asks for every
// past completion the kernel still holds when an institution turns the
// plugin on, so that a late plugin starts with the whole history.
func ExampleBatch_Tx() {
	lessonsCompleted := func(ctx context.Context, b *sdk.Batch) error {
		return b.Tx(ctx, func(tx pgx.Tx, evs []*sdk.Event) error {
			users := make([]string, 0, len(evs))
			for _, ev := range evs { // only those not handled before
				var in struct {
					UserID string `json:"user_id"`
				}
				if err := ev.Decode(&in); err != nil {
					return err
				}
				users = append(users, in.UserID)
			}
			_, err := tx.Exec(ctx, `INSERT INTO points (tenant_id, user_id, points)
				SELECT $1, u, 10 FROM unnest($2::uuid[]) AS u`, b.TenantID, users)
			return err
		})
	}
	_ = sdk.Subscription{
		Type:    "courses.lesson.completed.v1",
		Batch:   lessonsCompleted,
		CatchUp: sdk.CatchUpRetained(),
	}
}

// The catch-ups a subscription may ask for.
func ExampleCatchUp() {
	_ = []sdk.CatchUp{
		{},                                    // none: only what follows
		sdk.CatchUpRetained(),                 // everything the kernel's log still holds (its retention, 30 days by default)
		sdk.CatchUpWindow(7 * 24 * time.Hour), // the last week before the catch-up
		sdk.CatchUpSince(time.Date(2025, 9, 1, 0, 0, 0, 0, time.UTC)),
	}
}
