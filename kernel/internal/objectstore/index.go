package objectstore

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
)

// Index is blobstore.Index on the kernel's tables kernel.blob_objects and
// kernel.blob_usage (migration 0010). A plugin's commits and removals take
// its usage row's lock, one at a time, across replicas.
type Index struct{ pool *pgxpool.Pool }

var _ blobstore.Index = (*Index)(nil)

// NewIndex returns the index on pool.
func NewIndex(pool *pgxpool.Pool) *Index { return &Index{pool: pool} }

const entryColumns = "key, plugin, coalesce(tenant_id::text, ''), size, content_type, sha256, modified_at"

func scanEntry(row pgx.Row) (blobstore.Entry, error) {
	var e blobstore.Entry
	err := row.Scan(&e.Key, &e.Plugin, &e.Tenant, &e.Size, &e.ContentType, &e.SHA256, &e.Modified)
	e.Modified = e.Modified.UTC()
	return e, err
}

// Lookup implements blobstore.Index.
func (ix *Index) Lookup(ctx context.Context, key string) (blobstore.Entry, error) {
	e, err := scanEntry(ix.pool.QueryRow(ctx, "SELECT "+entryColumns+" FROM kernel.blob_objects WHERE key = $1", key))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, sdk.Errorf(sdk.ErrNotFound, "no object")
	}
	return e, err
}

// maxRune sorts after every character (UTF-8 byte order is code point
// order): a prefix followed by enough of it bounds every key with the
// prefix, so that a listing scans the index from the prefix to there.
var maxRune = strings.Repeat("\U0010FFFF", blobstore.MaxKeyBytes)

// List implements blobstore.Index.
func (ix *Index) List(ctx context.Context, prefix, after string, limit int) ([]blobstore.Entry, error) {
	rows, err := ix.pool.Query(ctx, "SELECT "+entryColumns+` FROM kernel.blob_objects
		WHERE key > $1 AND key >= $2 AND key <= $3 AND starts_with(key, $2)
		ORDER BY key LIMIT $4`, after, prefix, prefix+maxRune, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (blobstore.Entry, error) { return scanEntry(r) })
}

// Usage implements blobstore.Index.
func (ix *Index) Usage(ctx context.Context, plugin string) (int64, error) {
	var n int64
	err := ix.pool.QueryRow(ctx, "SELECT bytes FROM kernel.blob_usage WHERE plugin = $1", plugin).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return n, err
}

// lockUsage takes the plugin's usage row (creating it) and returns its bytes.
func lockUsage(ctx context.Context, tx pgx.Tx, plugin string) (int64, error) {
	if _, err := tx.Exec(ctx, "INSERT INTO kernel.blob_usage (plugin) VALUES ($1) ON CONFLICT (plugin) DO NOTHING", plugin); err != nil {
		return 0, err
	}
	var used int64
	err := tx.QueryRow(ctx, "SELECT bytes FROM kernel.blob_usage WHERE plugin = $1 FOR UPDATE", plugin).Scan(&used)
	return used, err
}

// Commit implements blobstore.Index: publish runs with the plugin's usage
// row locked, and the row of the object is written in the same
// transaction, committed only when publish succeeded.
func (ix *Index) Commit(ctx context.Context, e blobstore.Entry, ifNotExists bool, fits func(int64) error, publish func() error) error {
	return database.InTx(ctx, ix.pool, func(tx pgx.Tx) error {
		used, err := lockUsage(ctx, tx, e.Plugin)
		if err != nil {
			return err
		}
		var old int64
		err = tx.QueryRow(ctx, "SELECT size FROM kernel.blob_objects WHERE key = $1 FOR UPDATE", e.Key).Scan(&old)
		exists := err == nil
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		case ifNotExists:
			return blobstore.ErrExists
		}
		others := used - old
		if err := fits(others); err != nil {
			return err
		}
		if err := publish(); err != nil {
			return err
		}
		var tenant *string
		if e.Tenant != "" {
			tenant = &e.Tenant
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kernel.blob_objects (key, plugin, tenant_id, size, content_type, sha256, modified_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (key) DO UPDATE SET size = excluded.size, content_type = excluded.content_type,
				sha256 = excluded.sha256, modified_at = excluded.modified_at`,
			e.Key, e.Plugin, tenant, e.Size, e.ContentType, e.SHA256, e.Modified); err != nil {
			return err
		}
		added := 1
		if exists {
			added = 0
		}
		_, err = tx.Exec(ctx, "UPDATE kernel.blob_usage SET bytes = $2, objects = objects + $3 WHERE plugin = $1", e.Plugin, others+e.Size, added)
		return err
	})
}

// Remove implements blobstore.Index.
func (ix *Index) Remove(ctx context.Context, key string, remove func() error) error {
	s, _, ok := blobstore.ParseKey(key)
	if !ok {
		return sdk.Errorf(sdk.ErrNotFound, "no object")
	}
	return database.InTx(ctx, ix.pool, func(tx pgx.Tx) error {
		if _, err := lockUsage(ctx, tx, s.Plugin); err != nil {
			return err
		}
		var size int64
		err := tx.QueryRow(ctx, "DELETE FROM kernel.blob_objects WHERE key = $1 RETURNING size", key).Scan(&size)
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "no object")
		}
		if err != nil {
			return err
		}
		if err := remove(); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE kernel.blob_usage SET bytes = bytes - $2, objects = objects - 1 WHERE plugin = $1", s.Plugin, size)
		return err
	})
}
