package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/kernel/internal/config"
	"github.com/edulure/edulure/kernel/internal/dbtest"
)

func TestMain(m *testing.M) {
	code := dbtest.Main(m)
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

const password = "correct-Horse-battery-9"

// eventually bounds a wait for a condition (a wedged kernel), it measures
// nothing.
const eventually = 60 * time.Second

// kernel is a running kernel, with the console, on a fresh database.
type kernel struct {
	t      testing.TB
	url    string
	kernel *app.Kernel
}

// plugin is a plugin binary for a test's plugins.hcl.
type plugin struct {
	name   string
	module string // its own Go module, relative to the repository's root
	pkg    string // or a package of the kernel's module, built with ldflags
	ld     string
	config string // HCL object
	caps   string // the privileged capabilities the operator allows, an HCL list
}

var (
	buildMu  sync.Mutex
	buildDir string
	built    = map[string]string{} // name → path
)

// build compiles a plugin once per test binary.
func build(t testing.TB, p plugin) (path, sum string) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" {
		d, err := os.MkdirTemp("", "edulure-console-plugins-")
		require.NoError(t, err)
		buildDir = d
	}
	path = built[p.name]
	if path == "" {
		path = filepath.Join(buildDir, p.name)
		var cmd *exec.Cmd
		if p.module != "" {
			cmd = exec.Command("go", "build", "-trimpath", "-o", path, ".")
			cmd.Dir = filepath.Join("..", "..", "..", p.module)
		} else {
			cmd = exec.Command("go", "build", "-trimpath", "-ldflags", p.ld, "-o", path, p.pkg)
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "building plugin %s: %s", p.name, out)
		built[p.name] = path
	}
	body, err := os.ReadFile(path)
	require.NoError(t, err)
	s := sha256.Sum256(body)
	return path, hex.EncodeToString(s[:])
}

// manifestVersion is the version a plugin binary's manifest says
// (`<binary> manifest`, as edulure dev reads it).
func manifestVersion(t testing.TB, path string) string {
	t.Helper()
	out, err := exec.Command(path, "manifest").Output()
	require.NoError(t, err, "%s manifest", path)
	var m struct{ Version string }
	require.NoError(t, json.Unmarshal(out, &m))
	return m.Version
}

// start runs a kernel with the plugins and the extra environment.
func start(t testing.TB, plugins []plugin, env ...string) *kernel {
	t.Helper()
	pool, dbURL := dbtest.NewPool(t)
	file := "none"
	if len(plugins) > 0 {
		var b strings.Builder
		for _, p := range plugins {
			path, sum := build(t, p)
			v := manifestVersion(t, path)
			fmt.Fprintf(&b, "plugin %q {\n  path = %q\n  version = %q\n  sha256 = %q\n  enabled_by_default = true\n", p.name, path, v, sum)
			if p.caps != "" {
				fmt.Fprintf(&b, "  capabilities = %s\n", p.caps)
			}
			if p.config != "" {
				fmt.Fprintf(&b, "  config = %s\n", p.config)
			}
			b.WriteString("}\n")
		}
		file = filepath.Join(t.TempDir(), "plugins.hcl")
		require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o600))
	}
	u, err := url.Parse(dbURL)
	require.NoError(t, err)
	prefix := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return -1
	}, strings.ToLower(strings.TrimPrefix(u.Path, "/")))
	if len(prefix) > 18 {
		prefix = prefix[len(prefix)-18:]
	}
	vars := map[string]string{
		"DATABASE_URL":                  dbURL,
		"EDULURE_SECRET_KEY":            strings.Repeat("cd", 32),
		"EDULURE_AUTH_RATE_PER_IP":      "100000",
		"EDULURE_AUTH_RATE_PER_ACCOUNT": "100000",
		"EDULURE_MIGRATE_ON_START":      "false",
		"EDULURE_PLUGINS_FILE":          file,
		"EDULURE_DB_ROLE_PREFIX":        "c" + prefix + "_",
		"EDULURE_BLOB_URL":              "file://" + t.TempDir(),
	}
	for i := 0; i+1 < len(env); i += 2 {
		vars[env[i]] = env[i+1]
	}
	cfg, err := config.Load(func(k string) string { return vars[k] })
	require.NoError(t, err)
	log := hclog.New(&hclog.LoggerOptions{Level: hclog.Warn, Output: io.Discard})
	if testing.Verbose() {
		log = hclog.New(&hclog.LoggerOptions{Level: hclog.Info, Output: os.Stderr})
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	k, err := app.New(ctx, cfg, log, pool, nil...)
	require.NoError(t, err)
	t.Cleanup(k.Close)
	k.API.Run(ctx)
	srv := httptest.NewServer(k.API.Handler())
	t.Cleanup(srv.Close)
	return &kernel{t: t, url: srv.URL, kernel: k}
}

// institution creates an institution with an admin and a learner.
func (k *kernel) institution(slug string) {
	k.t.Helper()
	ctx := context.Background()
	_, err := app.CreateTenant(ctx, k.kernel.Pool, slug, "Institution "+slug)
	require.NoError(k.t, err)
	for _, role := range []string{"admin", "learner"} {
		_, err := app.CreateUser(ctx, k.kernel.Pool, app.UserSpec{Email: role + "@" + slug + ".test", Name: strings.ToUpper(role[:1]) + role[1:] + " of " + slug, Password: password, Tenant: slug, Roles: []string{role}})
		require.NoError(k.t, err)
	}
}

// api calls the kernel's API directly (not through the console).
func (k *kernel) api(method, path, token string, body any) (int, map[string]any) {
	k.t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		require.NoError(k.t, err)
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, k.url+path, rd)
	require.NoError(k.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(k.t, err)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return res.StatusCode, out
}

// login logs in over the API and returns an access token.
func (k *kernel) login(email, slug string) string {
	k.t.Helper()
	status, body := k.api("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": password, "tenant": slug})
	require.Equal(k.t, 200, status, "%v", body)
	return body["access_token"].(string)
}

// waitAPI waits until GET path answers a list with an item for which ok holds.
func (k *kernel) waitAPI(path, token string, ok func(map[string]any) bool) map[string]any {
	k.t.Helper()
	var found map[string]any
	require.EventuallyWithT(k.t, func(c *assert.CollectT) {
		status, body := k.api("GET", path, token, nil)
		if !assert.Equal(c, 200, status, "%v", body) {
			return
		}
		items, _ := body["items"].([]any)
		for _, it := range items {
			if m, _ := it.(map[string]any); m != nil && ok(m) {
				found = m
				return
			}
		}
		assert.Fail(c, "no matching item yet", "%s: %v", path, body)
	}, eventually, 50*time.Millisecond)
	return found
}

// loginMFA logs in over the API with a recovery code.
func (k *kernel) loginMFA(email, slug, recoveryCode string) string {
	k.t.Helper()
	status, body := k.api("POST", "/api/v1/auth/login", "", map[string]any{"email": email, "password": password, "tenant": slug})
	require.Equal(k.t, 200, status, "%v", body)
	require.Equal(k.t, true, body["mfa_required"], "%v", body)
	status, body = k.api("POST", "/api/v1/auth/mfa/verify", "", map[string]any{"mfa_token": body["mfa_token"], "recovery_code": recoveryCode})
	require.Equal(k.t, 200, status, "%v", body)
	return body["access_token"].(string)
}

// wrongCode is a six-digit code that no step near now accepts for secret.
func wrongCode(t testing.TB, secret string) string {
	t.Helper()
	valid := map[string]bool{}
	now := time.Now()
	for _, d := range []time.Duration{-60 * time.Second, -30 * time.Second, 0, 30 * time.Second, 60 * time.Second} {
		c, err := totp.GenerateCode(secret, now.Add(d))
		require.NoError(t, err)
		valid[c] = true
	}
	for _, c := range []string{"000000", "111111", "222222", "333333", "444444", "555555"} {
		if !valid[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}
