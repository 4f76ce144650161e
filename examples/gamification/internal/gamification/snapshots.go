package gamification

import (
	"bytes"
	"context"
	"encoding/json"
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
	// snapshotRetention is how long snapshots are kept.
	snapshotRetention = 90 * 24 * time.Hour
)

// Snapshot is what GET /api/v1/leaderboard/snapshots/latest answers.
type Snapshot struct {
	TakenAt time.Time `json:"taken_at"`
	Size    int       `json:"size"`  // how many members it was asked to keep
	Items   []Entry   `json:"items"` // highest first, at most Size
	Label   string    `json:"label"`
}

// snapshot runs the job leaderboard-snapshot for one institution: it copies
// the top of the leaderboard into snapshots and drops those older than
// snapshotRetention. The kernel may retry an attempt whose outcome it did
// not hear; the run's ID, the same for each attempt, keys the row, so a
// retry replaces the snapshot rather than adding one.
func (p *Plugin) snapshot(ctx context.Context, run *sdk.JobRun) error {
	size, err := snapshotSize(run.Args)
	if err != nil {
		return err
	}
	var kept int
	err = run.Tx(ctx, func(tx pgx.Tx) error {
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

// snapshotSize reads the arguments of a run: {} or {"size": 1..100}.
func snapshotSize(args json.RawMessage) (int, error) {
	var in struct {
		Size *int `json:"size"`
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return 0, sdk.Errorf(sdk.ErrInvalid, "arguments must be {} or {\"size\": 1..%d}: %v", maxLimit, err)
	}
	if in.Size == nil {
		return defaultSnapshotSize, nil
	}
	if *in.Size < 1 || *in.Size > maxLimit {
		return 0, sdk.Invalid(sdk.FieldError{Field: "size", Message: fmt.Sprintf("must be between 1 and %d", maxLimit)})
	}
	return *in.Size, nil
}

// latestSnapshot handles GET /api/v1/leaderboard/snapshots/latest.
func (p *Plugin) latestSnapshot(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cfg, err := p.config(req)
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
