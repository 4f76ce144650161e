package database

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"

	"github.com/edulure/edulure/sdk/storage"
)

// Migration is one numbered SQL file, "0001_identity.up.sql". The kernel's
// and the plugins' migrations share the SDK's loader.
type Migration = storage.Migration

// LoadMigrations reads the *.up.sql files at the root of fsys, in order.
func LoadMigrations(fsys fs.FS) ([]Migration, error) { return storage.LoadMigrations(fsys) }

// ErrMigrationEdited is returned when an applied migration's file changed.
var ErrMigrationEdited = errors.New("an applied migration was edited")

// Migrate applies the migrations in fsys that are not yet recorded in
// <schema>.schema_migrations. It holds a session advisory lock keyed on the
// schema for the whole run, so two processes migrating at once take turns.
// It returns the versions it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS) ([]int, error) {
	migs, err := LoadMigrations(fsys)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquiring connection for migrations: %w", err)
	}
	defer conn.Release()
	key := lockKey("migrate:" + schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return nil, fmt.Errorf("taking migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck

	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+ident+`;
		CREATE TABLE IF NOT EXISTS `+ident+`.schema_migrations (
			version integer PRIMARY KEY,
			name text NOT NULL,
			checksum text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return nil, fmt.Errorf("creating migrations table: %w", err)
	}
	applied := map[int]string{}
	rows, err := conn.Query(ctx, `SELECT version, checksum FROM `+ident+`.schema_migrations`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, err
		}
		applied[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var done []int
	for _, m := range migs {
		if sum, ok := applied[m.Version]; ok {
			if sum != m.Checksum {
				return done, fmt.Errorf("migration %04d_%s in schema %s: %w (a shipped migration is never edited; add a new one)", m.Version, m.Name, schema, ErrMigrationEdited)
			}
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO `+ident+`.schema_migrations (version, name, checksum) VALUES ($1, $2, $3)`, m.Version, m.Name, m.Checksum)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("applying migration %04d_%s: %w", m.Version, m.Name, err)
		}
		done = append(done, m.Version)
	}
	return done, nil
}

func lockKey(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}

// MigrateKernel applies the kernel's migrations (schema kernel) and River's
// (schema river, the job queue), each at most once across replicas.
func MigrateKernel(ctx context.Context, pool *pgxpool.Pool, fsys fs.FS) ([]int, error) {
	applied, err := Migrate(ctx, pool, "kernel", fsys)
	if err != nil {
		return nil, err
	}
	// Replicas starting together take turns.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Release()
	key := lockKey("migrate:river")
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return nil, fmt.Errorf("taking migration lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", key) //nolint:errcheck
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS river"); err != nil {
		return nil, fmt.Errorf("creating schema river: %w", err)
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Schema: "river"})
	if err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return nil, fmt.Errorf("river migrations: %w", err)
	}
	return applied, nil
}
