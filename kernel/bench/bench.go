package bench

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Options tune a run.
type Options struct {
	Root     string        // the repository
	Out      string        // results file; "" writes none
	Smoke    bool          // tiny loads and counts: checks that every measurement works
	Duration time.Duration // of each measured HTTP load
	Rounds   int           // interleaved rounds of compared loads; the best counts
	Only     []string      // row-name prefixes of the groups to run; empty: all
	Profile  string        // directory for CPU profiles of the kernel and a plugin under load
	LogLevel string        // the kernel's
	Keep     bool          // keep the scratch directory (logs, plugins.hcl)
	PGStat   bool          // load pg_stat_statements and print the costliest statements of the events measurement
	Log      io.Writer
}

// Main is cmd/bench: `bench [flags]` runs the benchmarks; `bench
// serve-baseline ...` is the baseline server it starts.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "serve-baseline" {
		if err := serveBaseline(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "serve-baseline:", err)
			return 1
		}
		return 0
	}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var o Options
	var only string
	fs.StringVar(&o.Out, "out", "bench/results.json", "results file (relative to the repository)")
	fs.BoolVar(&o.Smoke, "smoke", false, "quick check that every measurement runs (figures meaningless; writes no results unless -out is given)")
	fs.DurationVar(&o.Duration, "duration", 5*time.Second, "length of each measured HTTP load")
	fs.IntVar(&o.Rounds, "rounds", 2, "interleaved rounds of compared loads (the best of each counts)")
	fs.StringVar(&only, "only", "", "comma-separated groups to run: http, concurrency, rpc, micro, events, lifecycle, mem, streams, tenants, plugins, dbread, webhook, blob, privacy, telemetry, messaging, retention, governance, tracing")
	fs.IntVar(&telemetryEvents, "telemetry-events", telemetryEvents, "statements in the table for telemetry.aggregate_courses")
	fs.IntVar(&governanceStatements, "governance-statements", governanceStatements, "expired telemetry statements of governance.retention_execution")
	fs.IntVar(&governancePosts, "governance-posts", governancePosts, "expired messaging posts of governance.retention_execution")
	fs.StringVar(&o.Profile, "profile", "", "write CPU profiles of the kernel and the probe plugin under the no-op load to this directory")
	fs.StringVar(&o.LogLevel, "log-level", "warn", "the kernel's log level")
	fs.BoolVar(&o.Keep, "keep", false, "keep the scratch directory (kernel log, plugins.hcl)")
	fs.BoolVar(&o.PGStat, "pgstat", false, "diagnostics: print the costliest statements of the event delivery (pg_stat_statements)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	outSet := false
	fs.Visit(func(f *flag.Flag) { outSet = outSet || f.Name == "out" })
	if o.Smoke {
		o.Duration, o.Rounds = 300*time.Millisecond, 1
		if !outSet {
			o.Out = ""
		}
	}
	if only != "" {
		o.Only = strings.Split(only, ",")
	}
	root, err := findRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	o.Root, o.Log = root, os.Stderr
	if o.Out != "" && !filepath.IsAbs(o.Out) {
		o.Out = filepath.Join(root, o.Out)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rows, err := Run(ctx, o)
	if len(rows) > 0 {
		writeTable(os.Stdout, rows)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

// findRoot walks up to the directory holding the module's go.mod.
func findRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/edulure/edulure\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run it inside the repository (no go.mod of github.com/edulure/edulure above the working directory)")
		}
		dir = parent
	}
}

// Run sets everything up, measures, tears everything down and returns the
// rows (those measured before an error, with it).
func Run(ctx context.Context, o Options) ([]Row, error) {
	start := time.Now()
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	if err := e.startKernel(ctx); err != nil {
		return nil, err
	}
	if mb, err := rssMB(e.kernel.pid()); err == nil {
		e.printf("kernel resident memory when ready: %.1f MB", mb)
	}
	if err := e.seed(ctx); err != nil {
		return nil, fmt.Errorf("seeding: %w", err)
	}
	var rows []Row
	step := func(group string, fn func() ([]Row, error)) error {
		if !o.wants(group) || ctx.Err() != nil {
			return ctx.Err()
		}
		t := time.Now()
		e.printf("%s ...", group)
		rs, err := fn()
		if err != nil {
			return fmt.Errorf("%s: %w", group, err)
		}
		rows = append(rows, rs...)
		for _, r := range rs {
			e.printf("  %s", r)
		}
		e.printf("%s done (%s)", group, time.Since(t).Round(time.Second))
		return nil
	}
	one := func(fn func(context.Context) (Row, error)) func() ([]Row, error) {
		return func() ([]Row, error) {
			r, err := fn(ctx)
			if err != nil {
				return nil, err
			}
			return []Row{r}, nil
		}
	}
	steps := []struct {
		group string
		fn    func() ([]Row, error)
	}{
		{"mem", e.memRows},
		{"streams", e.streamRows},
		{"http", e.httpRows},
		{"concurrency", e.concurrencyRows},
		{"rpc", one(e.rpcRow)},
		{"micro", func() ([]Row, error) { return e.microRows(ctx) }},
		{"events", func() ([]Row, error) { return e.eventRows(ctx) }},
		{"lifecycle", func() ([]Row, error) { return e.lifecycleRows(ctx) }},
		{"plugins", one(e.pluginsRow)},
		{"tenants", one(e.tenantsRow)},
		{"dbread", func() ([]Row, error) { return e.dbReadRows(ctx) }},
		{"webhook", func() ([]Row, error) { return e.webhookRows(ctx) }},
		{"blob", func() ([]Row, error) { return e.blobRows(ctx) }},
		{"privacy", func() ([]Row, error) { return e.privacyRows(ctx) }},
		{"telemetry", func() ([]Row, error) { return e.telemetryRows(ctx) }},
		{"messaging", func() ([]Row, error) { return e.messagingRows(ctx) }},
		{"retention", func() ([]Row, error) { return e.retentionRows(ctx) }},
		{"governance", func() ([]Row, error) { return e.governanceRows(ctx) }},
		// Last: a second kernel joins the database.
		{"tracing", func() ([]Row, error) { return e.tracingRows(ctx) }},
	}
	for _, s := range steps {
		if err = step(s.group, s.fn); err != nil {
			break
		}
	}
	rows = order(rows)
	if err == nil && o.Out != "" {
		if werr := writeJSON(o.Out, rows); werr != nil {
			return rows, werr
		}
		e.printf("wrote %s", o.Out)
	}
	e.printf("finished in %s", time.Since(start).Round(time.Second))
	return rows, err
}

func (o Options) wants(group string) bool {
	if len(o.Only) == 0 {
		return true
	}
	for _, g := range o.Only {
		if strings.TrimSpace(g) == group {
			return true
		}
	}
	return false
}

// order puts rows in the order.
func order(rows []Row) []Row {
	prefixes := []string{"http.kernel_route", "http.plugin_noop", "http.plugin_db_read", "http.webhook_intake", "trace.", "rpc.", "authz.", "authn.", "events.", "plugins.", "mem.", "scale.tenants", "scale.plugins", "scale.concurrency", "blob.", "privacy.", "telemetry.", "messaging.", "retention.", "governance."}
	rank := func(name string) int {
		for i, p := range prefixes {
			if strings.HasPrefix(name, p) {
				return i
			}
		}
		return len(prefixes)
	}
	out := make([]Row, 0, len(rows))
	for i := 0; i <= len(prefixes); i++ {
		for _, r := range rows {
			if rank(r.Name) == i {
				out = append(out, r)
			}
		}
	}
	return out
}

func (r Row) String() string {
	s := fmt.Sprintf("%s = %s %s", r.Name, trim(r.Value), r.Unit)
	if r.Ratio != nil {
		s += fmt.Sprintf(" (baseline %s; ratio %s)", trim(*r.BaselineValue), trim(*r.Ratio))
	}
	if r.Target != nil {
		s += fmt.Sprintf(" target %s: %v", *r.Target, *r.Meets)
	}
	return s
}
