package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/migrations"
	"github.com/edulure/edulure/sdk/pgcluster"
)

// EnvURL names the variable holding the admin connection string.
const EnvURL = "TEST_DATABASE_URL"

// Main runs the tests of a package, first starting a throwaway cluster when
// TEST_DATABASE_URL is unset. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }
func Main(m *testing.M) int {
	if os.Getenv(EnvURL) != "" {
		return m.Run()
	}
	stop, err := StartCluster()
	if err != nil {
		fmt.Fprintln(os.Stderr, "dbtest:", err)
		return 1
	}
	defer stop()
	return m.Run()
}

// StartCluster starts a throwaway cluster, points TEST_DATABASE_URL at it
// and returns a function that stops and removes it.
func StartCluster() (stop func(), err error) {
	dir, err := os.MkdirTemp("", "edulure-pg-")
	if err != nil {
		return nil, err
	}
	// The server runs as another user when we are root: let it in.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	ctx := context.Background()
	c, err := pgcluster.Open(ctx, filepath.Join(dir, "pg"), pgcluster.Options{Throwaway: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("creating throwaway cluster: %w", err)
	}
	if err := c.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("starting throwaway cluster: %w", err)
	}
	os.Setenv(EnvURL, c.URL("postgres"))
	return func() {
		if err := c.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "dbtest:", err)
		}
		os.RemoveAll(dir)
	}, nil
}

var (
	templateOnce sync.Once
	templateName string
	templateErr  error
)

// New returns the URL of a fresh database holding the kernel's migrations.
// The database is dropped when the test ends.
func New(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		t.Fatal("dbtest: TEST_DATABASE_URL is unset; call dbtest.Main from TestMain")
	}
	ctx := context.Background()
	templateOnce.Do(func() { templateName, templateErr = ensureTemplate(ctx, admin) })
	if templateErr != nil {
		t.Fatalf("dbtest: preparing template database: %v", templateErr)
	}
	name := "t_" + randomHex(8)
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("dbtest: connecting: %v", err)
	}
	defer conn.Close(ctx)
	for attempt := 0; ; attempt++ {
		_, err = conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{templateName}.Sanitize()))
		var pgErr *pgconn.PgError
		if err != nil && errors.As(err, &pgErr) && pgErr.Code == "55006" && attempt < 50 {
			time.Sleep(100 * time.Millisecond) // another session is still on the template
			continue
		}
		break
	}
	if err != nil {
		t.Fatalf("dbtest: creating database: %v", err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dbtest: dropping %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{name}.Sanitize())); err != nil {
			t.Logf("dbtest: dropping %s: %v", name, err)
		}
	})
	return withDatabase(admin, name)
}

// NewPool returns a pool on a fresh database (see New), closed when the test ends.
func NewPool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	u := New(t)
	pool, err := database.Connect(context.Background(), u, 10)
	if err != nil {
		t.Fatalf("dbtest: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool, u
}

// ensureTemplate creates, once per set of migrations, a database holding
// them; concurrent test binaries serialise on an advisory lock.
func ensureTemplate(ctx context.Context, admin string) (string, error) {
	migs, err := database.LoadMigrations(migrations.FS)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range migs {
		h.Write([]byte(m.Checksum))
	}
	name := "edulure_tmpl_" + hex.EncodeToString(h.Sum(nil))[:16]

	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock(7312001)"); err != nil {
		return "", err
	}
	defer conn.Exec(ctx, "SELECT pg_advisory_unlock(7312001)") //nolint:errcheck
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return "", err
	}
	if exists {
		return name, nil
	}
	build := name + "_build"
	if _, err := conn.Exec(ctx, fmt.Sprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", pgx.Identifier{build}.Sanitize())); err != nil {
		return "", err
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s", pgx.Identifier{build}.Sanitize())); err != nil {
		return "", err
	}
	pool, err := database.Connect(ctx, withDatabase(admin, build), 2)
	if err != nil {
		return "", err
	}
	_, err = database.MigrateKernel(ctx, pool, migrations.FS)
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrating template: %w", err)
	}
	if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER DATABASE %s RENAME TO %s", pgx.Identifier{build}.Sanitize(), pgx.Identifier{name}.Sanitize())); err != nil {
		return "", err
	}
	return name, nil
}

func withDatabase(rawURL, db string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		panic(fmt.Sprintf("dbtest: bad TEST_DATABASE_URL: %v", err))
	}
	u.Path = "/" + db
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
