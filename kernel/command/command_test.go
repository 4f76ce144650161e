package command

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/dbtest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

const testSecretKey = "6a1f0c9e4b2d8a7f3e5c1b0d9a8f7e6d5c4b3a291807f6e5d4c3b2a190817263"

// result is what a person at the terminal sees.
type result struct {
	code   int
	stdout string
	stderr string
}

func run(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := Run(args, &stdout, &stderr)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// clearEnv unsets, for this test, every variable the commands read.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DATABASE_URL" || strings.HasPrefix(name, "EDULURE_") {
			t.Setenv(name, "")
		}
	}
	t.Setenv("DATABASE_URL", "")
	t.Setenv("EDULURE_SECRET_KEY", "")
	t.Setenv("EDULURE_USER_PASSWORD", "")
}

// emptyDatabase returns the URL of a database with no tables at all,
// dropped when the test ends.
func emptyDatabase(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	admin := os.Getenv(dbtest.EnvURL)
	conn, err := pgx.Connect(ctx, admin)
	require.NoError(t, err)
	defer conn.Close(ctx)
	name := "cmd_" + randomHex(8)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	require.NoError(t, err)
	t.Cleanup(func() {
		c, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Logf("dropping %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Logf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	require.NoError(t, err)
	u.Path = "/" + name
	return u.String()
}

func TestUsage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStderr []string
	}{
		{name: "no arguments", args: nil, wantCode: 2, wantStderr: []string{"Usage: edulure <command>"}},
		{name: "help", args: []string{"help"}, wantCode: 0, wantStderr: []string{"Usage: edulure <command>"}},
		{name: "-h", args: []string{"-h"}, wantCode: 0, wantStderr: []string{"Usage: edulure <command>"}},
		{name: "unknown command", args: []string{"srve"}, wantCode: 2, wantStderr: []string{`edulure: unknown command "srve"`, "Usage: edulure <command>"}},
		{name: "keys without a verb", args: []string{"keys"}, wantCode: 2, wantStderr: []string{"usage: edulure keys list | rotate | retire <kid>"}},
		{name: "keys retire without a kid", args: []string{"keys", "retire"}, wantCode: 2, wantStderr: []string{"usage: edulure keys"}},
		{name: "tenant-create without flags", args: []string{"tenant-create"}, wantCode: 2, wantStderr: []string{"-slug", "-name"}},
		{name: "user-create without flags", args: []string{"user-create", "-name", "A"}, wantCode: 2, wantStderr: []string{"-email"}},
		{name: "unknown flag", args: []string{"migrate", "-force"}, wantCode: 2, wantStderr: []string{"flag provided but not defined: -force", "Usage of edulure migrate"}},
		{name: "subcommand help", args: []string{"tenant-create", "-h"}, wantCode: 2, wantStderr: []string{"Usage of edulure tenant-create", "-slug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := run(tt.args...)
			require.Equal(t, tt.wantCode, r.code, r)
			for _, w := range tt.wantStderr {
				require.Equal(t, 1, strings.Count(r.stderr, w), "stderr should say %q once:\n%s", w, r.stderr)
			}
		})
	}

	t.Run("lists every command", func(t *testing.T) {
		t.Parallel()
		r := run()
		for _, name := range []string{"serve", "migrate", "tenant-create", "user-create", "audit-verify", "keys", "dev"} {
			require.Contains(t, r.stderr, "\n  "+name+" ", "usage should list %s", name)
		}
	})
}

func TestMissingConfiguration(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		wantStderr []string
	}{
		{name: "serve", args: []string{"serve"}, wantStderr: []string{"DATABASE_URL: is required", "EDULURE_SECRET_KEY: is required"}},
		{name: "migrate", args: []string{"migrate"}, wantStderr: []string{"DATABASE_URL: is required"}},
		{name: "tenant-create", args: []string{"tenant-create", "-slug", "uni", "-name", "Uni"}, wantStderr: []string{"DATABASE_URL", "EDULURE_SECRET_KEY"}},
		{name: "keys list", args: []string{"keys", "list"}, wantStderr: []string{"DATABASE_URL", "EDULURE_SECRET_KEY"}},
		{name: "audit-verify", args: []string{"audit-verify"}, wantStderr: []string{"DATABASE_URL", "EDULURE_SECRET_KEY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			r := run(tt.args...)
			require.Equal(t, 1, r.code, r)
			require.Empty(t, r.stdout)
			require.Contains(t, r.stderr, "edulure "+tt.args[0]+": ")
			for _, w := range tt.wantStderr {
				require.Contains(t, r.stderr, w)
			}
		})
	}

	t.Run("serve with a short secret key", func(t *testing.T) {
		clearEnv(t)
		t.Setenv("DATABASE_URL", "postgres://localhost/edulure")
		t.Setenv("EDULURE_SECRET_KEY", "abcd")
		r := run("serve")
		require.Equal(t, 1, r.code, r)
		require.Contains(t, r.stderr, "EDULURE_SECRET_KEY: must be exactly 32 bytes")
		require.NotContains(t, r.stderr, "DATABASE_URL")
	})
}

// TestAdminCommands bootstraps a platform from an empty database, as an
// operator would.
func TestAdminCommands(t *testing.T) {
	clearEnv(t)
	t.Setenv("DATABASE_URL", emptyDatabase(t))
	t.Setenv("EDULURE_SECRET_KEY", testSecretKey)

	r := run("migrate")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "applied migrations [")

	r = run("migrate")
	require.Equal(t, 0, r.code, r)
	require.Equal(t, "database is up to date\n", r.stdout)

	r = run("tenant-create", "-slug", "uni", "-name", "Uni")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "created institution uni (")

	r = run("tenant-create", "-slug", "uni", "-name", "Another Uni")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "edulure tenant-create: ")

	r = run("user-create", "-email", "a@uni.test", "-name", "A", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "EDULURE_USER_PASSWORD: is required")

	t.Setenv("EDULURE_USER_PASSWORD", "password")
	r = run("user-create", "-email", "a@uni.test", "-name", "A", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "password", "a weak password is refused with a reason")

	t.Setenv("EDULURE_USER_PASSWORD", "correct-Horse-battery-9")
	r = run("user-create", "-email", "a@uni.test", "-name", "A", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "user a@uni.test (")
	require.Contains(t, r.stdout, ") ready")

	r = run("user-create", "-email", "b@uni.test", "-name", "B", "-tenant", "nowhere")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "edulure user-create: ")

	// An account someone signed up with an address they never proved is
	// given no role from the console either (issue 15): the operator is
	// told to invite the address.
	conn, err := pgx.Connect(context.Background(), os.Getenv("DATABASE_URL"))
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), `INSERT INTO kernel.users (id, email, display_name, password_hash) VALUES (gen_random_uuid(), 'dean@uni.test', 'Squatter', 'x')`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))
	r = run("user-create", "-email", "dean@uni.test", "-name", "Dean", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "has not verified its email address")
	require.Contains(t, r.stderr, "invite the address")

	r = run("audit-verify")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "ok ")
	require.NotContains(t, r.stdout, "BROKEN")

	r = run("audit-verify", "-tenant", "uni")
	require.Equal(t, 0, r.code, r)
	require.True(t, strings.HasPrefix(r.stdout, "ok "), r)

	// Keys: the first use creates a key, rotate adds a second.
	r = run("keys", "rotate")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "new signing key ")

	r = run("keys", "list")
	require.Equal(t, 0, r.code, r)
	keys := parseKeys(t, r.stdout)
	require.Len(t, keys, 2, r)
	require.Equal(t, "verifying", keys[0].state)
	require.Equal(t, "signing", keys[1].state)
	oldKID, activeKID := keys[0].kid, keys[1].kid

	r = run("keys", "retire", activeKID)
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "active signing key")

	r = run("keys", "retire", oldKID)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "retired "+oldKID)

	r = run("keys", "list")
	require.Equal(t, 0, r.code, r)
	keys = parseKeys(t, r.stdout)
	require.Len(t, keys, 2, r)
	require.Equal(t, key{oldKID, "retired"}, keys[0])
	require.Equal(t, key{activeKID, "signing"}, keys[1])

	t.Run("a different secret key cannot open the signing keys", func(t *testing.T) {
		t.Setenv("EDULURE_SECRET_KEY", strings.Repeat("0f", 32))
		r := run("keys", "list")
		require.Equal(t, 1, r.code, r)
		require.Contains(t, r.stderr, "wrong EDULURE_SECRET_KEY")
	})
}

type key struct{ kid, state string }

func parseKeys(t *testing.T, out string) []key {
	t.Helper()
	var keys []key
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		require.GreaterOrEqual(t, len(f), 3, "line %q", line)
		require.Equal(t, "created", f[2], "line %q", line)
		keys = append(keys, key{f[0], f[1]})
	}
	return keys
}
