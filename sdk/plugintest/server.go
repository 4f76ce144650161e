package plugintest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"

	"github.com/edulure/edulure/sdk/pgcluster"
)

// EnvURL names the environment variable holding the admin connection
// string of the PostgreSQL server the harness uses. Unset, the harness
// starts a throwaway cluster.
const EnvURL = "TEST_DATABASE_URL"

// server is the one PostgreSQL server of the test binary.
var server struct {
	mu      sync.Mutex
	url     string
	err     error
	dir     string
	cluster *pgcluster.Cluster
}

// Main runs a package's tests and then stops the throwaway cluster the
// harness may have started. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
//
// Without it the cluster is still removed, by a watchdog process, shortly
// after the test binary exits.
func Main(m *testing.M) int {
	code := m.Run()
	stopServer()
	return code
}

// adminURL is the admin connection string: TEST_DATABASE_URL, or a
// throwaway cluster started on first use and shared by the test binary.
func adminURL(ctx context.Context) (string, error) {
	if u := os.Getenv(EnvURL); u != "" {
		return u, nil
	}
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.url != "" || server.err != nil {
		return server.url, server.err
	}
	server.url, server.err = startServer(ctx)
	return server.url, server.err
}

func startServer(ctx context.Context) (string, error) {
	// Not t.TempDir: the server may run as the postgres user, which must
	// reach the data directory.
	dir, err := os.MkdirTemp("", "edulure-plugintest-")
	if err != nil {
		return "", fmt.Errorf("plugintest: %w", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("plugintest: %w", err)
	}
	c, err := pgcluster.Open(ctx, filepath.Join(dir, "pg"), pgcluster.Options{Throwaway: true})
	if err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("plugintest: creating a throwaway cluster (or set %s): %w", EnvURL, err)
	}
	if err := c.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("plugintest: starting a throwaway cluster (or set %s): %w", EnvURL, err)
	}
	server.dir, server.cluster = dir, c
	startWatchdog(dir, filepath.Join(c.Dir, "data"))
	return c.URL("postgres"), nil
}

func stopServer() {
	server.mu.Lock()
	defer server.mu.Unlock()
	if server.cluster == nil {
		return
	}
	if err := server.cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "plugintest:", err)
	}
	os.RemoveAll(server.dir)
	server.cluster, server.dir, server.url, server.err = nil, "", "", nil
}

// watchdog waits for the test binary to exit, then stops the cluster (fast
// shutdown, SIGINT to the postmaster) and removes its directory. It covers
// test binaries without Main and those killed before Main could clean up.
const watchdog = `
while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -f "$3/postmaster.pid" ]; then
	kill -INT "$(head -n 1 "$3/postmaster.pid")" 2>/dev/null
	i=0
	while [ -f "$3/postmaster.pid" ] && [ "$i" -lt 120 ]; do sleep 0.5; i=$((i+1)); done
fi
rm -rf "$2"
`

func startWatchdog(dir, dataDir string) {
	cmd := exec.Command("/bin/sh", "-c", watchdog, "plugintest-watchdog", strconv.Itoa(os.Getpid()), dir, dataDir)
	// Its own process group, and no inherited stdout: neither Ctrl-C nor
	// go test (which waits for the binary's output to close) waits on it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "plugintest: no watchdog for the throwaway cluster; call plugintest.Main from TestMain:", err)
		return
	}
	cmd.Process.Release() //nolint:errcheck // it outlives us by design
}
