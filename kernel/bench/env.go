package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/edulure/edulure/kernel/internal/app"
	"github.com/edulure/edulure/sdk/pgcluster"
)

// env is everything a run set up; close undoes it.
type env struct {
	opts    Options
	log     io.Writer
	dir     string // scratch: plugins, plugins.hcl, logs
	secret  string
	dbURL   string // the kernel's database (a role that may create roles)
	adminDB string // a database URL that may CREATE DATABASE (go test benchmarks)
	pool    *pgxpool.Pool
	cluster *pgcluster.Cluster

	kernelBin  string
	plugins    map[string]built // by build name: "scale" (name from plugins.hcl), "sink", "sinkb" (batched)
	courses    *built           // the courses plugin, when plugins/courses builds
	commerce   *built           // the commerce plugin, when plugins/commerce builds
	telemetry  *built           // the telemetry plugin, when plugins/telemetry builds
	messaging  *built           // the messaging plugin, when plugins/messaging builds
	governance *built           // the governance plugin, when plugins/governance builds

	kernel *process
	url    string // http://127.0.0.1:port
	pprof  string // the kernel's profile address
	pprofP string // the probe plugin's

	echoFig  *echoFigures   // the same-run baselines of absolute rows, once measured
	named    map[int]string // other processes the run started, by pid, for CPU accounting
	tenantID string
	tokens   map[string]string // admin, instructor, learner, operator
	closers  []func()
}

// built is a built plugin.
type built struct{ path, sum string }

// process is a child process with its log.
type process struct {
	cmd  *exec.Cmd
	logf *os.File
	done chan struct{}
}

func (p *process) pid() int { return p.cmd.Process.Pid }

func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.logf.Close()
}

func startProcess(logPath string, cmd *exec.Cmd) (*process, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &process{cmd: cmd, logf: f, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (e *env) printf(format string, args ...any) { fmt.Fprintf(e.log, format+"\n", args...) }

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// newEnv starts Postgres and builds the binaries.
func newEnv(ctx context.Context, opts Options) (*env, error) {
	e := &env{opts: opts, log: opts.Log, plugins: map[string]built{}, tokens: map[string]string{}, named: map[int]string{}}
	var err error
	if e.dir, err = os.MkdirTemp("", "edulure-bench-"); err != nil {
		return nil, err
	}
	// Postgres runs as another user when we are root: let it in.
	if err := os.Chmod(e.dir, 0o755); err != nil {
		return nil, err
	}
	e.closers = append(e.closers, func() {
		if opts.Keep {
			e.printf("kept %s", e.dir)
			return
		}
		os.RemoveAll(e.dir)
	})
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	e.secret = hex.EncodeToString(key)
	if err := e.startPostgres(ctx); err != nil {
		e.close()
		return nil, err
	}
	if err := e.build(ctx); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) startPostgres(ctx context.Context) error {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		e.printf("using DATABASE_URL")
		e.dbURL, e.adminDB = u, u
	} else {
		start := time.Now()
		c, err := pgcluster.Open(ctx, filepath.Join(e.dir, "pg"), pgcluster.Options{Throwaway: true})
		if err != nil {
			return fmt.Errorf("creating a Postgres cluster: %w", err)
		}
		if err := c.Start(ctx); err != nil {
			return fmt.Errorf("starting Postgres: %w", err)
		}
		e.cluster = c
		e.closers = append(e.closers, func() {
			if err := c.Stop(); err != nil {
				e.printf("stopping Postgres: %v", err)
			}
		})
		admin, err := pgxpool.New(ctx, c.URL("postgres"))
		if err != nil {
			return err
		}
		if e.opts.PGStat {
			// Diagnostics: per-statement figures (restart to load the module).
			if _, err := admin.Exec(ctx, "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'"); err != nil {
				return err
			}
			admin.Close()
			if err := c.Stop(); err != nil {
				return err
			}
			if err := c.Start(ctx); err != nil {
				return err
			}
			if admin, err = pgxpool.New(ctx, c.URL("postgres")); err != nil {
				return err
			}
		}
		_, err = admin.Exec(ctx, "CREATE DATABASE edulure_bench")
		admin.Close()
		if err != nil {
			return err
		}
		e.dbURL, e.adminDB = c.URL("edulure_bench"), c.URL("postgres")
		e.printf("Postgres started on port %d (%s)", c.Port, time.Since(start).Round(time.Millisecond))
	}
	pool, err := pgxpool.New(ctx, e.dbURL)
	if err != nil {
		return err
	}
	e.pool = pool
	if e.opts.PGStat {
		if _, err := pool.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
			return err
		}
	}
	e.closers = append(e.closers, pool.Close)
	return nil
}

// build compiles the kernel and the plugins the run uses.
func (e *env) build(ctx context.Context) error {
	start := time.Now()
	root := e.opts.Root
	e.kernelBin = filepath.Join(root, "bin", "edulure")
	if err := goBuild(ctx, root, e.kernelBin, "./cmd/edulure"); err != nil {
		return err
	}
	// The test plugin (kernel/internal/supervisor/internal/testplugin): one
	// build takes its name from plugins.hcl, so one binary serves as many
	// plugins as the run needs; the other subscribes to the first's pings.
	// Scheduled jobs are set to once a year so that none fires mid-run.
	const testplugin = "./kernel/internal/supervisor/internal/testplugin"
	yearly := " -X 'main.tick=0 0 1 1 *'"
	builds := map[string]string{
		"scale": "-X main.nameFrom=env -X main.subscribe=" + yearly,
		"sink":  "-X main.name=sink -X main.subscribe=probe.ping.sent.v1" + yearly,
		"sinkb": "-X main.name=sink -X main.subscribe=probe.ping.sent.v1*@retained" + yearly,
		// With the privileged capabilities, for the retention rows.
		"govt": "-X main.name=govt -X main.caps=storage,retention,grants,sign -X main.subscribe=" + yearly,
	}
	for name, ldflags := range builds {
		path := filepath.Join(e.dir, "plugins", name)
		if err := goBuild(ctx, root, path, testplugin, "-trimpath", "-ldflags", ldflags); err != nil {
			return err
		}
		b, err := checksum(path)
		if err != nil {
			return err
		}
		e.plugins[name] = b
	}
	coursesDir := filepath.Join(root, "plugins", "courses")
	if _, err := os.Stat(filepath.Join(coursesDir, "go.mod")); err == nil {
		path := filepath.Join(e.dir, "plugins", "courses")
		if err := goBuild(ctx, coursesDir, path, ".", "-trimpath"); err != nil {
			e.printf("the courses plugin does not build; http.plugin_db_read is skipped: %v", err)
		} else if b, err := checksum(path); err == nil {
			e.courses = &b
		}
	}
	commerceDir := filepath.Join(root, "plugins", "commerce")
	if _, err := os.Stat(filepath.Join(commerceDir, "go.mod")); err == nil {
		path := filepath.Join(e.dir, "plugins", "commerce")
		if err := goBuild(ctx, commerceDir, path, ".", "-trimpath"); err != nil {
			e.printf("the commerce plugin does not build; http.webhook_intake is skipped: %v", err)
		} else if b, err := checksum(path); err == nil {
			e.commerce = &b
		}
	}
	telemetryDir := filepath.Join(root, "plugins", "telemetry")
	if _, err := os.Stat(filepath.Join(telemetryDir, "go.mod")); err == nil && (e.opts.wants("telemetry") || e.opts.wants("retention") || e.opts.wants("governance")) {
		path := filepath.Join(e.dir, "plugins", "telemetry")
		if err := goBuild(ctx, telemetryDir, path, ".", "-trimpath"); err != nil {
			e.printf("the telemetry plugin does not build; the telemetry rows are skipped: %v", err)
		} else if b, err := checksum(path); err == nil {
			e.telemetry = &b
		}
	}
	messagingDir := filepath.Join(root, "plugins", "messaging")
	if _, err := os.Stat(filepath.Join(messagingDir, "go.mod")); err == nil {
		path := filepath.Join(e.dir, "plugins", "messaging")
		if err := goBuild(ctx, messagingDir, path, ".", "-trimpath"); err != nil {
			e.printf("the messaging plugin does not build; messaging.* is skipped: %v", err)
		} else if b, err := checksum(path); err == nil {
			e.messaging = &b
		}
	}
	governanceDir := filepath.Join(root, "plugins", "governance")
	if _, err := os.Stat(filepath.Join(governanceDir, "go.mod")); err == nil && e.opts.wants("governance") {
		path := filepath.Join(e.dir, "plugins", "governance")
		if err := goBuild(ctx, governanceDir, path, ".", "-trimpath"); err != nil {
			e.printf("the governance plugin does not build; governance.* is skipped: %v", err)
		} else if b, err := checksum(path); err == nil {
			e.governance = &b
		}
	}
	e.printf("built the kernel and plugins (%s)", time.Since(start).Round(time.Millisecond))
	return nil
}

func goBuild(ctx context.Context, dir, out, pkg string, flags ...string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

func checksum(path string) (built, error) {
	f, err := os.Open(path)
	if err != nil {
		return built{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return built{}, err
	}
	return built{path: path, sum: hex.EncodeToString(h.Sum(nil))}, nil
}

// pluginEntry is one plugin "name" { ... } block.
type pluginEntry struct {
	name    string
	bin     built
	version string // "" → 1.0.0, the test plugin's
	config  string // HCL object; "" for none
	allow   string // privileged capabilities, HCL list items; "" for none
	timeout string // limits.request_timeout; "" for the default
}

// writePlugins writes plugins.hcl with entries. Every plugin gets room for
// the heaviest load of the run (256 connections, 1,000 streams) so that
// the limits, which answer 503 above them, are not what is measured.
func (e *env) writePlugins(entries ...pluginEntry) (string, error) {
	var b strings.Builder
	for _, p := range entries {
		version := p.version
		if version == "" {
			version = "1.0.0"
		}
		fmt.Fprintf(&b, "plugin %q {\n  path = %q\n  version = %q\n  sha256 = %q\n  enabled_by_default = true\n", p.name, p.bin.path, version, p.bin.sum)
		if p.config != "" {
			fmt.Fprintf(&b, "  config = %s\n", p.config)
		}
		if p.allow != "" {
			fmt.Fprintf(&b, "  capabilities = [%s]\n", p.allow)
		}
		b.WriteString("  limits {\n    max_concurrent_requests = 1024\n    max_streams = 2000\n    max_streams_per_institution = 2000\n")
		if p.timeout != "" {
			fmt.Fprintf(&b, "    request_timeout = %q\n", p.timeout)
		}
		b.WriteString("  }\n}\n")
	}
	path := filepath.Join(e.dir, "plugins.hcl")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

// basePlugins is what the kernel runs outside the scale measurements.
func (e *env) basePlugins() []pluginEntry {
	out := []pluginEntry{
		{name: "probe", bin: e.plugins["scale"], config: fmt.Sprintf("{ pprof_addr = %q }", e.pprofP)},
		{name: "sink", bin: e.plugins["sink"]},
		{name: "spare", bin: e.plugins["scale"]}, // killed for plugins.crash_recovery
	}
	return out
}

// startKernel runs bin/edulure serve on a free loopback port.
func (e *env) startKernel(ctx context.Context) error {
	var err error
	if e.pprofP, err = freeAddr(); err != nil {
		return err
	}
	file, err := e.writePlugins(e.basePlugins()...)
	if err != nil {
		return err
	}
	port, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	pport, err := pgcluster.FreePort()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	e.url, e.pprof = "http://"+addr, "127.0.0.1:"+strconv.Itoa(pport)
	cmd := exec.CommandContext(ctx, e.kernelBin, "serve")
	cmd.Env = []string{
		"DATABASE_URL=" + e.dbURL,
		"EDULURE_SECRET_KEY=" + e.secret,
		"EDULURE_ADDR=" + addr,
		"EDULURE_PLUGINS_FILE=" + file,
		"EDULURE_DB_ROLE_PREFIX=bench_",
		"EDULURE_LOG_FORMAT=json",
		"EDULURE_LOG_LEVEL=" + e.opts.LogLevel,
		"EDULURE_ACCESS_TOKEN_TTL=2h", // the run outlasts the default 15 minutes
		"EDULURE_AUTH_RATE_PER_IP=1000000",
		"EDULURE_AUTH_RATE_PER_ACCOUNT=1000000",
		"EDULURE_PPROF_ADDR=" + e.pprof,
		"EDULURE_BLOB_URL=file://" + filepath.Join(e.dir, "kernel-blobs"), // exports and offboarding archives
		"PATH=" + os.Getenv("PATH"),
	}
	start := time.Now()
	p, err := startProcess(filepath.Join(e.dir, "kernel.log"), cmd)
	if err != nil {
		return err
	}
	e.kernel = p
	e.closers = append(e.closers, p.stop)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		// Readiness shows the plugins' states to operators only: log one in
		// as soon as the kernel answers.
		if res, err := http.Get(e.url + "/readyz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 && e.tokens["operator"] == "" {
				if err := e.seedOperator(ctx); err != nil {
					return err
				}
			}
		}
		if op := e.tokens["operator"]; op != "" {
			req, _ := http.NewRequest("GET", e.url+"/readyz", nil)
			req.Header.Set("Authorization", "Bearer "+op)
			if res, err := http.DefaultClient.Do(req); err == nil {
				body, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode == 200 && !bytes.Contains(body, []byte(`"starting"`)) {
					break
				}
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("the kernel exited; its log is %s", p.logf.Name())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the kernel did not get ready in 2 minutes; its log is %s", p.logf.Name())
		}
	}
	e.printf("kernel ready on %s (%s)", e.url, time.Since(start).Round(time.Millisecond))
	return nil
}

const password = "bench-Passphrase-long-enough-1"

// seed creates the institution "bench" with an admin, an instructor and a
// learner, an operator, and logs each in.
func (e *env) seed(ctx context.Context) error {
	t, err := app.CreateTenant(ctx, e.pool, "bench", "Benchmark University")
	if err != nil {
		return err
	}
	e.tenantID = t.ID.String()
	for _, role := range []string{"admin", "instructor", "learner"} {
		if _, err := app.CreateUser(ctx, e.pool, app.UserSpec{Email: role + "@bench.test", Name: role, Password: password, Tenant: "bench", Roles: []string{role}}); err != nil {
			return err
		}
		if e.tokens[role], err = e.login(role+"@bench.test", "bench"); err != nil {
			return err
		}
	}
	if e.tokens["operator"] != "" {
		return nil
	}
	return e.seedOperator(ctx)
}

// seedOperator creates a platform operator and logs it in.
func (e *env) seedOperator(ctx context.Context) error {
	if _, err := app.CreateUser(ctx, e.pool, app.UserSpec{Email: "operator@bench.test", Name: "Operator", Password: password, Operator: true}); err != nil {
		return err
	}
	var err error
	e.tokens["operator"], err = e.login("operator@bench.test", "")
	return err
}

func (e *env) login(email, tenant string) (string, error) {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := e.call("POST", "/api/v1/auth/login", "", map[string]string{"email": email, "password": password, "tenant": tenant}, 200, &out); err != nil {
		return "", err
	}
	return out.AccessToken, nil
}

// call sends one JSON request to the kernel and decodes the answer.
func (e *env) call(method, path, token string, body any, status int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if res.StatusCode != status {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// pluginPID is the pid of a plugin's process, as operators see it.
func (e *env) pluginPID(name string) (int, error) {
	var page struct {
		Items []struct {
			Name  string `json:"name"`
			State string `json:"state"`
			PID   int    `json:"pid"`
		} `json:"items"`
	}
	if err := e.call("GET", "/api/v1/plugins", e.tokens["operator"], nil, 200, &page); err != nil {
		return 0, err
	}
	for _, it := range page.Items {
		if it.Name == name {
			if it.State != "running" || it.PID == 0 {
				return 0, fmt.Errorf("plugin %s is %s", name, it.State)
			}
			return it.PID, nil
		}
	}
	return 0, fmt.Errorf("plugin %s is not loaded", name)
}

// reload re-reads plugins.hcl after writing entries to it.
func (e *env) reload(entries ...pluginEntry) error {
	if _, err := e.writePlugins(entries...); err != nil {
		return err
	}
	var res struct {
		Failed map[string]string `json:"failed"`
	}
	if err := e.call("POST", "/api/v1/plugins/reload", e.tokens["operator"], nil, 200, &res); err != nil {
		return err
	}
	if len(res.Failed) > 0 {
		return fmt.Errorf("plugins failed to load: %v", res.Failed)
	}
	return nil
}

// rssMB is a process's resident memory.
func rssMB(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			kb, err := strconv.ParseFloat(f[0], 64)
			return kb / 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc/" + strconv.Itoa(pid) + "/status")
}

// freeAddr is a free loopback address.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}
