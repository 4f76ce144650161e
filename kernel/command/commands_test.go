package command

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
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

// adminDatabase sets the environment of the admin commands to a fresh
// database the kernel's migrations have been applied to.
func adminDatabase(t *testing.T) {
	t.Helper()
	clearEnv(t)
	t.Setenv("DATABASE_URL", emptyDatabase(t))
	t.Setenv("EDULURE_SECRET_KEY", testSecretKey)
	r := run("migrate")
	require.Equal(t, 0, r.code, r)
}

// requireMissingConfiguration runs a command with no configuration: exit
// 1, naming each variable it needs.
func requireMissingConfiguration(t *testing.T, args []string, want ...string) {
	t.Helper()
	clearEnv(t)
	r := run(args...)
	require.Equal(t, 1, r.code, r)
	require.Empty(t, r.stdout)
	require.Contains(t, r.stderr, "edulure "+args[0]+": ")
	for _, w := range want {
		require.Contains(t, r.stderr, w)
	}
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// serving runs a command that serves until its context ends, waits until
// addr answers /readyz, and returns a function that stops it and returns
// its output and error.
func serving(t *testing.T, cmd func(ctx context.Context, args []string, stdout, stderr io.Writer) error, addr string, args ...string) func() (string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() { done <- cmd(ctx, args, &stdout, &stderr) }()
	var once sync.Once
	var err error
	stop := func() (string, error) {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return stdout.String(), err
	}
	t.Cleanup(func() { stop() })
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		select {
		case err := <-done:
			done <- err
			require.FailNow(c, "the command stopped", "%v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
		default:
		}
		res, err := http.Get("http://" + addr + "/readyz")
		require.NoError(c, err)
		res.Body.Close()
		require.Equal(c, http.StatusOK, res.StatusCode)
	}, 60*time.Second, 50*time.Millisecond, "never ready; stderr:\n%s", &stderr)
	return stop
}

// syncBuffer is a bytes.Buffer safe for a command's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
