package gamification

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// SnapshotJob copies the top of each institution's leaderboard nightly.
const SnapshotJob = "leaderboard-snapshot"

const (
	// defaultSnapshotSize is how many members a snapshot keeps; a manual
	// run may ask for another size with {"size": n}.
	defaultSnapshotSize = 10
	maxSnapshotSize     = 100
	// snapshotRetention is how long snapshots are kept.
	snapshotRetention = 90 * 24 * time.Hour
)

// Snapshot is what GET /api/v1/leaderboard/snapshots/latest answers.
type Snapshot struct {
	TakenAt time.Time `json:"taken_at"`
	Size    int       `json:"size" minimum:"1" maximum:"100" doc:"How many members it was asked to keep."`
	Items   []Entry   `json:"items" doc:"Highest first, at most size."`
	Label   string    `json:"label" doc:"What the institution calls points."`
}

// snapshotArgs are the arguments of a manual run: {} or {"size": 1..100}.
type snapshotArgs struct {
	Size *int `json:"size"`
}

// snapshot runs the job leaderboard-snapshot for one institution: it copies
// the top of the leaderboard into snapshots and drops those older than
// snapshotRetention. The kernel may retry an attempt whose outcome it did
// not hear; the run's ID, the same for each attempt, keys the row, so a
// retry replaces the snapshot rather than adding one.
func (p *Plugin) snapshot(ctx context.Context, run *sdk.JobRun) error {
	var args snapshotArgs
	if err := run.Decode(&args); err != nil {
		return err
	}
	size := defaultSnapshotSize
	if args.Size != nil {
		if *args.Size < 1 || *args.Size > maxSnapshotSize {
			return sdk.Invalid(sdk.FieldError{Field: "size", Message: fmt.Sprintf("must be between 1 and %d", maxSnapshotSize)})
		}
		size = *args.Size
	}
	var kept int
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		entries, err := topEntries(ctx, tx, size)
		if err != nil {
			return err
		}
		kept = len(entries)
		if _, err := tx.Exec(ctx, `
			INSERT INTO snapshots (tenant_id, run_id, size, entries) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tenant_id, run_id) DO UPDATE
				SET taken_at = now(), size = EXCLUDED.size, entries = EXCLUDED.entries`,
			run.TenantID, run.ID, size, entries); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "DELETE FROM snapshots WHERE taken_at < now() - make_interval(secs => $1)", snapshotRetention.Seconds())
		return err
	})
	if err != nil {
		return err
	}
	run.SetOutput(fmt.Sprintf("snapshot of the top %d: %d members", size, kept))
	return nil
}

// latestSnapshot handles GET /api/v1/leaderboard/snapshots/latest.
func (p *Plugin) latestSnapshot(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	out := Snapshot{Label: cfg.Label}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `
			SELECT taken_at, size, entries FROM snapshots
			ORDER BY taken_at DESC, run_id DESC
			LIMIT 1`).Scan(&out.TakenAt, &out.Size, &out.Items)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no snapshot of the leaderboard yet: the job %s takes one nightly", SnapshotJob)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}
