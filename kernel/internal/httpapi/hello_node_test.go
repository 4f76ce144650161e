package httpapi_test

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/supervisor"
)

// TestHelloNode loads examples/hello-node, a plugin written in Node.js
// against docs/protocol.md (no Go SDK), into a real kernel, and calls its
// route through the kernel with real tokens. The route calls the kernel
// back over the go-plugin broker (Host.GetTenantConfig, Host.Authorize), so
// a passing test means the handshake, AutoMTLS in both directions, the
// broker, the manifest, the lifecycle and the error encoding all work
// without Go on the plugin's side. It also checks what the protocol
// document promises about the plugin's environment, its log lines and its
// shutdown.
func TestHelloNode(t *testing.T) {
	t.Parallel()
	script, sum := helloNodePlugin(t)
	logs := &lockedBuffer{}
	var out io.Writer = logs
	if testing.Verbose() {
		out = io.MultiWriter(logs, os.Stderr)
	}
	logger := hclog.New(&hclog.LoggerOptions{Level: hclog.Debug, Output: out, JSONFormat: true})
	file := filepath.Join(t.TempDir(), "plugins.hcl")
	require.NoError(t, os.WriteFile(file, []byte(fmt.Sprintf(`plugin "hello_node" {
  path = %q
  version = "0.1.0"
  sha256 = %q
  enabled_by_default = true
}
`, script, sum)), 0o600))
	b := setupLogged(t, logger, "EDULURE_PLUGINS_FILE", file)
	st, ok := b.kernel.Plugins.Status("hello_node")
	require.True(t, ok)
	require.Equal(t, supervisor.StateRunning, st.State, "the Node plugin did not start: %s\nkernel log:\n%s", st.LastError, logs)
	a := b.institution("uni")
	other := b.institution("elsewhere")

	// The route answers through the kernel, with the caller's principal and
	// the Host service's answers.
	r := b.do("GET", "/api/v1/hello", a.learner, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "application/json", r.Header.Get("Content-Type"))
	require.Equal(t, map[string]any{"message": "hello from node", "tenant": a.id, "user": a.learnerID, "can_manage": false}, r.Body)
	// Host.Authorize: hello_node.greeting.manage is an admin's by default.
	r = b.do("GET", "/api/v1/hello?name=Ada", a.admin, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, map[string]any{"message": "hello from node, Ada", "tenant": a.id, "user": a.adminID, "can_manage": true}, r.Body)

	// A handler error of kind "invalid" with a field is the kernel's 422.
	r = b.do("GET", "/api/v1/hello?name="+strings.Repeat("x", 41), a.learner, nil)
	requireProblem(t, r, 422, "invalid-request")
	require.Equal(t, "name", r.str("errors", "0", "field"), "%s", r.Raw)

	// Host.GetTenantConfig: the admin sets the greeting (validated against
	// the manifest's config schema); the plugin reads it from the kernel.
	requireProblem(t, b.do("PUT", "/api/v1/tenant/plugins/hello_node", a.admin, map[string]any{"enabled": true, "config": map[string]any{"greeting": ""}}), 422, "invalid-request")
	r = b.do("PUT", "/api/v1/tenant/plugins/hello_node", a.admin, map[string]any{"enabled": true, "config": map[string]any{"greeting": "kia ora"}})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, "kia ora", b.do("GET", "/api/v1/hello", a.learner, nil).str("message"))
	}, 10*time.Second, 50*time.Millisecond)
	// Another institution keeps its own settings and sees its own tenant.
	r = b.do("GET", "/api/v1/hello", other.instructor, nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, map[string]any{"message": "hello from node", "tenant": other.id, "user": other.instructorID, "can_manage": false}, r.Body)

	// The kernel still authenticates and authorises before the plugin sees anything.
	requireProblem(t, b.do("GET", "/api/v1/hello", "", nil), 401, "missing-credentials")
	r = b.do("PUT", "/api/v1/tenant/plugins/hello_node", a.admin, map[string]any{"enabled": false})
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	requireProblem(t, b.do("GET", "/api/v1/hello", a.learner, nil), 404, "plugin-not-enabled")
	// Its route is in the API's one OpenAPI document.
	require.Contains(t, string(b.do("GET", "/api/openapi.json", "", nil).Raw), `"/api/v1/hello"`)

	// The plugin's stderr, hclog JSON, is re-logged by the kernel under the
	// plugin's name with its fields.
	start := findLogLine(t, logs, "plugin starting")
	require.Contains(t, start["@module"], "hello_node", "re-logged under the plugin's name")
	require.Equal(t, "debug", start["@level"])
	require.EqualValues(t, st.PID, start["pid"])
	// The plugin's environment is the kernel's handful of variables, not
	// the kernel's own (DATABASE_URL, EDULURE_SECRET_KEY, ...).
	var env []string
	for _, v := range start["env"].([]any) {
		env = append(env, v.(string))
	}
	require.Equal(t, []string{"EDULURE_PLUGIN", "EDULURE_PLUGIN_NAME", "PATH", "PLUGIN_CLIENT_CERT", "PLUGIN_MAX_PORT", "PLUGIN_MIN_PORT", "PLUGIN_PROTOCOL_VERSIONS"}, env)

	// Stopping the kernel asks the plugin to exit (GRPCController.Shutdown),
	// and it does, without being killed.
	b.kernel.Close()
	require.Eventually(t, func() bool { return errors.Is(syscall.Kill(st.PID, 0), syscall.ESRCH) }, 10*time.Second, 20*time.Millisecond, "the plugin process is still there")
	stop := findLogLine(t, logs, "plugin stopping")
	require.Equal(t, "the kernel asked", stop["reason"])
	require.NotContains(t, logs.String(), "plugin failed to exit gracefully")
}

var helloNode struct {
	once      sync.Once
	path, sum string
	err       error
}

// helloNodePlugin installs the example's npm dependencies if they are
// missing or older than its package-lock.json (npm ci), and returns its
// entry script's path and SHA-256. Node.js and npm are required: without
// them the test fails and says so.
func helloNodePlugin(t *testing.T) (path, sum string) {
	t.Helper()
	helloNode.once.Do(func() {
		helloNode.path, helloNode.sum, helloNode.err = prepareHelloNode()
	})
	require.NoError(t, helloNode.err)
	return helloNode.path, helloNode.sum
}

func prepareHelloNode() (string, string, error) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "..", "examples", "hello-node"))
	if err != nil {
		return "", "", err
	}
	// The kernel starts plugins with a fixed PATH; the script's
	// "#!/usr/bin/env node" looks for node there.
	var node string
	for _, d := range filepath.SplitList(supervisor.PluginPATH) {
		if _, err := os.Stat(filepath.Join(d, "node")); err == nil {
			node = filepath.Join(d, "node")
			break
		}
	}
	if node == "" {
		where := "not installed"
		if p, err := exec.LookPath("node"); err == nil {
			where = "at " + p
		}
		return "", "", fmt.Errorf("examples/hello-node needs Node.js (18 or later) on the plugins' PATH %s; node is %s (install Debian's nodejs and npm, or link node into /usr/local/bin)", supervisor.PluginPATH, where)
	}
	if _, err := exec.LookPath("npm"); err != nil {
		return "", "", fmt.Errorf("examples/hello-node needs npm to install its dependencies: %w", err)
	}
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", "", err
	}
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || installed.ModTime().Before(lock.ModTime()) {
		cmd := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("npm ci in %s: %v\n%s", dir, err, out)
		}
	}
	script := filepath.Join(dir, "hello-node.js")
	body, err := os.ReadFile(script)
	if err != nil {
		return "", "", err
	}
	s := sha256.Sum256(body)
	return script, hex.EncodeToString(s[:]), nil
}

// findLogLine returns the first JSON line of the kernel's log whose
// @message is msg.
func findLogLine(t *testing.T, logs *lockedBuffer, msg string) map[string]any {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["@message"] == msg {
			return line
		}
	}
	require.FailNow(t, "no log line "+msg, "kernel log:\n%s", logs)
	return nil
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
