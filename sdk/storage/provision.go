package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/sdk/wire"
)

// Spec describes one plugin's storage.
type Spec struct {
	Plugin string
	// RolePrefix prefixes both role names. Roles are global to a Postgres
	// cluster while schemas belong to one database: deployments (or test
	// databases) sharing a cluster need distinct prefixes.
	RolePrefix string
	// Password of the login role.
	Password   string
	Migrations []Migration
	// MaxConns caps the login role's connections (0: no cap).
	MaxConns int
}

// Schema is the plugin's schema name.
func (s Spec) Schema() string { return "plugin_" + s.Plugin }

// Role is the login role the plugin connects as.
func (s Spec) Role() string { return s.RolePrefix + "plugin_" + s.Plugin }

// OwnerRole owns the schema and its tables and runs migrations. It cannot
// log in, so the plugin can never drop row-level security.
func (s Spec) OwnerRole() string { return s.Role() + "_owner" }

// ErrMigrationEdited is returned when an applied migration changed.
var ErrMigrationEdited = errors.New("an applied migration was edited")

// TenantPolicy names the restrictive row-level security policy Provision
// puts on tenant-scoped tables.
const TenantPolicy = "edulure_tenant_isolation"

// Provision creates or updates the plugin's roles and schema, applies the
// migrations not yet applied, and enforces row-level security on every table
// with a tenant_id column, all in one transaction on admin (a connection
// that may create roles). It returns the versions it applied. Concurrent
// calls for one plugin take turns.
func Provision(ctx context.Context, admin *pgxpool.Pool, s Spec) ([]int, error) {
	if !wire.PluginName.MatchString(s.Plugin) {
		return nil, fmt.Errorf("plugin name %q: must be 2-31 lowercase letters, digits or underscores, starting with a letter", s.Plugin)
	}
	tx, err := admin.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock(hashtext('edulure.plugin.' || $1))", s.Plugin); err != nil {
		return nil, err
	}
	if err := ensureRoles(ctx, tx, s); err != nil {
		return nil, fmt.Errorf("creating roles: %w", err)
	}
	schema, owner, role := ident(s.Schema()), ident(s.OwnerRole()), ident(s.Role())
	setup := fmt.Sprintf(`
		CREATE SCHEMA IF NOT EXISTS %[1]s AUTHORIZATION %[2]s;
		REVOKE ALL ON SCHEMA %[1]s FROM PUBLIC;
		GRANT USAGE ON SCHEMA %[1]s TO %[3]s;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[2]s IN SCHEMA %[1]s GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %[3]s;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[2]s IN SCHEMA %[1]s GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO %[3]s;
		ALTER DEFAULT PRIVILEGES FOR ROLE %[2]s IN SCHEMA %[1]s GRANT EXECUTE ON FUNCTIONS TO %[3]s;
		CREATE TABLE IF NOT EXISTS %[1]s.edulure_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			checksum   text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		);
		REVOKE ALL ON %[1]s.edulure_migrations FROM PUBLIC, %[2]s, %[3]s;`, schema, owner, role)
	if _, err := tx.Exec(ctx, setup); err != nil {
		return nil, fmt.Errorf("creating schema %s: %w", s.Schema(), err)
	}
	applied, err := migrate(ctx, tx, s)
	if err != nil {
		return nil, err
	}
	if err := ensureEventTables(ctx, tx, s); err != nil {
		return nil, fmt.Errorf("creating the event outbox and inbox: %w", err)
	}
	if err := enforceRLS(ctx, tx, s); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	return applied, nil
}

func ensureRoles(ctx context.Context, tx pgx.Tx, s Spec) error {
	limit := s.MaxConns
	if limit <= 0 {
		limit = -1
	}
	for _, r := range []struct {
		name  string
		login bool
	}{{s.OwnerRole(), false}, {s.Role(), true}} {
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", r.name).Scan(&exists); err != nil {
			return err
		}
		attrs := "NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS"
		if r.login {
			// The password is a literal: utility statements take no parameters.
			attrs = fmt.Sprintf("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %d PASSWORD %s", limit, literal(s.Password))
		}
		stmt := "ALTER ROLE "
		if !exists {
			stmt = "CREATE ROLE "
		}
		if _, err := tx.Exec(ctx, stmt+ident(r.name)+" "+attrs); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42710" { // created meanwhile by another database's provisioning
				return fmt.Errorf("role %s was created concurrently; retry: %w", r.name, err)
			}
			return err
		}
	}
	// The admin must be able to SET ROLE to the owner to run migrations
	// (a superuser can anyway; a CREATEROLE admin grants itself).
	_, err := tx.Exec(ctx, fmt.Sprintf("GRANT %s TO CURRENT_USER", ident(s.OwnerRole())))
	return err
}

func migrate(ctx context.Context, tx pgx.Tx, s Spec) ([]int, error) {
	schema := ident(s.Schema())
	done := map[int]string{}
	rows, err := tx.Query(ctx, "SELECT version, checksum FROM "+schema+".edulure_migrations")
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var v int
		var sum string
		if err := rows.Scan(&v, &sum); err != nil {
			return nil, err
		}
		done[v] = sum
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var applied []int
	for _, m := range s.Migrations {
		if sum, ok := done[m.Version]; ok {
			if sum != m.Checksum {
				return nil, fmt.Errorf("plugin %s migration %04d_%s: %w (ship a new migration instead)", s.Plugin, m.Version, m.Name, ErrMigrationEdited)
			}
			continue
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL ROLE %s; SET LOCAL search_path = %s", ident(s.OwnerRole()), schema)); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, m.SQL); err != nil {
			return nil, fmt.Errorf("plugin %s migration %04d_%s: %w", s.Plugin, m.Version, m.Name, err)
		}
		if _, err := tx.Exec(ctx, "RESET ROLE; RESET search_path"); err != nil {
			return nil, err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".edulure_migrations (version, name, checksum) VALUES ($1, $2, $3)", m.Version, m.Name, m.Checksum); err != nil {
			return nil, err
		}
		applied = append(applied, m.Version)
	}
	return applied, nil
}

// Outbox and Inbox are the tables Provision creates for events: the plugin
// inserts what it publishes into Outbox (and may not read it back; the
// kernel's relay moves rows out), and records the IDs of handled events in
// Inbox.
const (
	Outbox = "edulure_outbox"
	Inbox  = "edulure_inbox"
)

func ensureEventTables(ctx context.Context, tx pgx.Tx, s Spec) error {
	schema, role := ident(s.Schema()), ident(s.Role())
	_, err := tx.Exec(ctx, fmt.Sprintf(`
		CREATE TABLE IF NOT EXISTS %[1]s.edulure_outbox (
			seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			id          uuid NOT NULL UNIQUE,
			type        text NOT NULL,
			tenant_id   uuid NOT NULL,
			actor       text NOT NULL DEFAULT '',
			request_id  text NOT NULL DEFAULT '',
			data        jsonb NOT NULL,
			occurred_at timestamptz NOT NULL DEFAULT now()
		);
		-- Since SDK v1.2: the publisher's W3C traceparent ('' when untraced).
		ALTER TABLE %[1]s.edulure_outbox ADD COLUMN IF NOT EXISTS traceparent text NOT NULL DEFAULT '';
		REVOKE ALL ON %[1]s.edulure_outbox FROM PUBLIC;
		GRANT INSERT ON %[1]s.edulure_outbox TO %[2]s;
		CREATE TABLE IF NOT EXISTS %[1]s.edulure_inbox (
			event_id   uuid PRIMARY KEY,
			handled_at timestamptz NOT NULL DEFAULT now()
		);
		REVOKE ALL ON %[1]s.edulure_inbox FROM PUBLIC;
		GRANT SELECT, INSERT, DELETE ON %[1]s.edulure_inbox TO %[2]s;`, schema, role))
	return err
}

// enforceRLS turns on forced row-level security on every table of the
// schema with a tenant_id column, with a restrictive policy (so no policy a
// migration adds can widen it) and a permissive one that admits the rest.
// It runs after every provisioning, so a migration cannot switch it off.
func enforceRLS(ctx context.Context, tx pgx.Tx, s Spec) error {
	rows, err := tx.Query(ctx, `
		SELECT c.relname, format_type(a.atttypid, a.atttypmod)
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		ORDER BY c.relname`, s.Schema())
	if err != nil {
		return err
	}
	type table struct{ name, typ string }
	var tables []table
	for rows.Next() {
		var t table
		if err := rows.Scan(&t.name, &t.typ); err != nil {
			return err
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for _, t := range tables {
		if t.typ != "uuid" {
			return fmt.Errorf("plugin %s table %s: tenant_id must be of type uuid, not %s", s.Plugin, t.name, t.typ)
		}
		q := ident(s.Schema()) + "." + ident(t.name)
		// The outbox's tenant rule binds the plugin; the kernel's relay reads
		// every institution's rows.
		to := ""
		if t.name == Outbox {
			to = "TO " + ident(s.Role())
		}
		stmt := fmt.Sprintf(`
			ALTER TABLE %[1]s ENABLE ROW LEVEL SECURITY;
			ALTER TABLE %[1]s FORCE ROW LEVEL SECURITY;
			DROP POLICY IF EXISTS %[2]s ON %[1]s;
			CREATE POLICY %[2]s ON %[1]s AS RESTRICTIVE %[5]s
				USING (tenant_id = NULLIF(current_setting('%[4]s', true), '')::uuid)
				WITH CHECK (tenant_id = NULLIF(current_setting('%[4]s', true), '')::uuid);
			DROP POLICY IF EXISTS %[3]s ON %[1]s;
			CREATE POLICY %[3]s ON %[1]s USING (true) WITH CHECK (true);`,
			q, TenantPolicy, TenantPolicy+"_base", tenantSetting, to)
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("row-level security on %s: %w", q, err)
		}
	}
	return nil
}

// tenantSetting mirrors sdk.TenantSetting (this package cannot import sdk).
const tenantSetting = "edulure.tenant_id"

// RuntimeURL is the connection string the plugin uses: adminURL's host and
// database, the plugin's role and password, its schema on the search path.
func RuntimeURL(adminURL string, s Spec) (string, error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", fmt.Errorf("parsing database URL: %w", err)
	}
	u.User = url.UserPassword(s.Role(), s.Password)
	q := u.Query()
	q.Set("search_path", s.Schema())
	q.Set("application_name", "edulure-plugin-"+s.Plugin)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Drop removes the plugin's roles (after the databases using them are gone
// or the schema was dropped). For tests.
func Drop(ctx context.Context, admin *pgxpool.Pool, s Spec) error {
	_, err := admin.Exec(ctx, fmt.Sprintf("DROP SCHEMA IF EXISTS %s CASCADE", ident(s.Schema())))
	if err != nil {
		return err
	}
	for _, r := range []string{s.Role(), s.OwnerRole()} {
		if _, err := admin.Exec(ctx, fmt.Sprintf("DROP OWNED BY %[1]s; DROP ROLE IF EXISTS %[1]s", ident(r))); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "42704" { // role does not exist
				continue
			}
			return err
		}
	}
	return nil
}

func ident(s string) string { return pgx.Identifier{s}.Sanitize() }

func literal(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' {
			out = append(out, '\'')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}
