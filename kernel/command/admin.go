package command

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/config"
)

// openAdmin opens the database for an admin command, migrating it first so
// that a fresh database can be bootstrapped without `serve`.
func openAdmin(ctx context.Context) (*pgxpool.Pool, config.Config, error) {
	cfg, err := loadConfig()
	if err != nil {
		return nil, cfg, err
	}
	pool, err := app.Open(ctx, cfg, app.NewLogger(cfg, discard{}))
	if err != nil {
		return nil, cfg, fmt.Errorf("opening database: %w", err)
	}
	return pool, cfg, nil
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
