// Command testplugin is a plugin for the kernel's tests: it echoes requests,
// stores rows under row-level security and objects in the kernel's storage
// (storage.go), sleeps, fails, panics and crashes on demand, and streams
// (stream.go). Its name, version and route prefix are set at link time
// (-ldflags "-X main.name=... -X main.version=... -X main.prefix=..."), so
// one source gives the variants the tests need (upgrades, conflicts).
package main

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/edulure/edulure/sdk"
)

var (
	name      = "probe"
	version   = "1.0.0"
	prefix    = ""                         // route prefix; defaults to name
	subscribe = "tenancy.member.joined.v1" // comma-separated event types; suffixes: "+" ordered, "*" batched, "@retained" (or another policy) catch-up
	tick      = ""                         // schedule of the "tick" job; "" → "*/5 * * * *"
	nameFrom  = ""                         // "env": the name plugins.hcl gives it (EDULURE_PLUGIN_NAME), so one binary serves many
)

//go:embed migrations/*.sql
var migrations embed.FS

func main() {
	if n := os.Getenv("EDULURE_PLUGIN_NAME"); nameFrom == "env" && n != "" {
		name = n
	}
	sdk.Serve(newProbe)
}

type probe struct {
	env     *sdk.Env
	op      config
	created prometheus.Counter // <name>_items_created_total
}

// config is the plugin's configuration: an institution sets the greeting;
// the rest are the operator's test switches in plugins.hcl.
type config struct {
	Greeting     string `json:"greeting,omitempty" maxLength:"10"`
	CrashOnStart bool   `json:"crash_on_start,omitempty"`
	FailEvents   bool   `json:"fail_events,omitempty" doc:"every delivery fails"`
	CrashOnEvent bool   `json:"crash_on_event,omitempty" doc:"exit while handling an event (once per process start)"`
	SlowEventsMs int    `json:"slow_events_ms,omitempty" minimum:"0" doc:"sleep in each event handler"`
	// FailPingN fails the ping numbered n (data.n) of each transaction
	// while its attempt is at most FailPingAttempts.
	FailPingN        *int `json:"fail_ping_n,omitempty"`
	FailPingAttempts int  `json:"fail_ping_attempts,omitempty"`
	// HoldEventsFile, HoldEventsAfter: once this process has handled
	// HoldEventsAfter pings (*.ping.sent.v1), each further ping's handler
	// waits while the file exists (and writes "<file>.held" first), so a
	// test can catch deliveries in flight without racing them.
	HoldEventsFile  string `json:"hold_events_file,omitempty" doc:"hold pings while this file exists"`
	HoldEventsAfter int64  `json:"hold_events_after,omitempty" minimum:"0" doc:"pings handled before holding"`
	// EchoSocket: listen on this Unix socket and echo every message back, the
	// raw round trip that make bench compares a gRPC crossing with.
	EchoSocket string `json:"echo_socket,omitempty"`
	PprofAddr  string `json:"pprof_addr,omitempty" doc:"serve net/http/pprof here (loopback), for profiling under load"`
	// APIKey is a secret setting, an institution's or the operator's: the
	// routes report its SHA-256, never its value.
	APIKey string `json:"api_key,omitempty" secret:"true" minLength:"8" maxLength:"100" doc:"a secret"`
	// HostileMetrics registers families that would shadow the kernel's
	// series and another plugin's; HangMetrics, a collector that never
	// returns.
	HostileMetrics bool `json:"hostile_metrics,omitempty"`
	HangMetrics    bool `json:"hang_metrics,omitempty"`
}

// echoQuery, sqlQuery, sleepQuery and publishQuery are the routes' query
// parameters.
type (
	echoQuery struct {
		Q []string `query:"q"`
	}
	sqlQuery struct {
		Q string `query:"q"`
	}
	sleepQuery struct {
		Ms   int    `query:"ms" minimum:"0"`
		Hold string `query:"hold"` // sleep while this file exists instead
	}
	publishQuery struct {
		N        int    `query:"n" minimum:"0" maximum:"100000"`
		Rollback string `query:"rollback"`
		Bad      string `query:"bad"`
	}
)

// newItem is the body of POST /items. TenantID is there for the isolation
// tests: a hostile client may name another tenant, and row-level security
// must refuse it.
type newItem struct {
	Name     string `json:"name" minLength:"1"`
	TenantID string `json:"tenant_id,omitempty"`
}

var _ sdk.Plugin = (*probe)(nil)

func newProbe() *probe { return &probe{} }

func (p *probe) Manifest() sdk.Manifest {
	pre := prefix
	if pre == "" {
		pre = name
	}
	base := "/api/v1/" + pre
	read, write := name+".item.read", name+".item.write"
	return sdk.Manifest{
		Name: name, Version: version, Description: "Test plugin for the kernel's own tests",
		Permissions: []sdk.Permission{
			{Name: read, Description: "Read items", DefaultRoles: []string{"admin", "instructor", "learner"}},
			{Name: write, Description: "Write items", DefaultRoles: []string{"admin", "instructor"}},
		},
		Routes: append([]sdk.Route{
			{Method: http.MethodGet, Path: base + "/echo/{id}", Permission: read, Summary: "Echo the request", Query: echoQuery{}, Handler: p.echo},
			{Method: http.MethodGet, Path: base + "/noop", Permission: read, Summary: "Answer 204", Status: http.StatusNoContent, Handler: noop},
			{Method: http.MethodGet, Path: base + "/public", Public: true, Summary: "Public echo", Handler: p.echo},
			{Method: http.MethodPost, Path: base + "/items", Permission: write, Summary: "Store an item",
				Request: newItem{}, Response: item{}, Status: http.StatusCreated, Handler: p.addItem},
			{Method: http.MethodGet, Path: base + "/items", Permission: read, Summary: "List items (no tenant filter: RLS does it)", Handler: p.listItems},
			{Method: http.MethodGet, Path: base + "/sql", Permission: read, Summary: "Run a probing query as the plugin role", Query: sqlQuery{}, Handler: p.sql},
			{Method: http.MethodGet, Path: base + "/sleep", Permission: read, Summary: "Sleep ?ms= milliseconds, or while the file ?hold= exists", Query: sleepQuery{}, Handler: sleep},
			{Method: http.MethodPost, Path: base + "/crash", Permission: read, Summary: "Exit the process mid-request", Handler: crash},
			{Method: http.MethodGet, Path: base + "/invalid", Permission: read, Summary: "Answer a field error", Handler: invalid},
			{Method: http.MethodGet, Path: base + "/panic", Permission: read, Summary: "Panic in the handler", Handler: panics},
			{Method: http.MethodGet, Path: base + "/host", Permission: read, Summary: "Call the kernel's host services", Handler: p.host},
			{Method: http.MethodPost, Path: base + "/publish", Permission: write, Summary: "Publish ?n= pings in one transaction (?rollback=1: then fail)", Query: publishQuery{}, Handler: p.publish},
		}, append(append(append(p.streamRoutes(base, read, write), storageRoutes(p, base, read, write)...), personalRoutes(p, base, read, write)...), governanceRoutes(p, base, read)...)...),
		Capabilities: capabilities(),
		Publishes: []sdk.EventType{
			{Type: name + ".item.created.v1", Schema: json.RawMessage(`{"type":"object","required":["id","name"],"properties":{"id":{"type":"integer"},"name":{"type":"string"}}}`)},
			{Type: name + ".ping.sent.v1", Description: "A numbered ping for delivery tests", Schema: json.RawMessage(`{"type":"object","required":["n","sent_ns"],"properties":{"n":{"type":"integer"},"sent_ns":{"type":"integer"}}}`)},
		},
		Subscribes: p.subscriptions(),
		Jobs: []sdk.Job{
			{Name: "tick", Schedule: schedule(), Handler: p.logJob},
			{Name: "sweep", Schedule: schedule(), PerTenant: true, Handler: p.logJob},
			{Name: "on-created", OnEvent: name + ".item.created.v1", PerTenant: true, Handler: p.logJob},
			{Name: "flaky", Description: "Fails until args.succeed_on", PerTenant: true, MaxAttempts: 3, Handler: p.flaky},
			{Name: "slow", Description: "Sleeps past its timeout", PerTenant: true, MaxAttempts: 2, Timeout: time.Second, Handler: p.slow},
		},
		Migrations:   migrations,
		Config:       config{},
		PersonalData: p.personalData(),
		Retention:    p.retention(),
	}
}

func (p *probe) Provision(ctx context.Context, env *sdk.Env) error {
	op, err := sdk.OperatorConfig[config](env)
	if err != nil {
		return err
	}
	p.op = op
	if p.op.CrashOnStart {
		os.Exit(7)
	}
	if p.op.PprofAddr != "" {
		go servePprof(p.op.PprofAddr)
	}
	if p.op.EchoSocket != "" {
		if err := serveEcho(p.op.EchoSocket); err != nil {
			return err
		}
	}
	p.env = env
	return p.registerMetrics(env.Metrics)
}

// registerMetrics registers the probe's collector, and the hostile and
// hanging ones its operator configuration asks for.
func (p *probe) registerMetrics(reg prometheus.Registerer) error {
	p.created = prometheus.NewCounter(prometheus.CounterOpts{Name: name + "_items_created_total", Help: "Items stored."})
	cs := []prometheus.Collector{p.created}
	if p.op.HostileMetrics {
		gauge := func(metric string, labels ...string) *prometheus.GaugeVec {
			g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metric, Help: "Not the probe's to publish."}, labels)
			vals := make([]string, len(labels))
			for i := range vals {
				vals[i] = "forged"
			}
			g.WithLabelValues(vals...).Set(1e9)
			return g
		}
		cs = append(cs,
			gauge("edulure_http_requests_total", "method", "route", "status"), // the kernel's
			gauge("go_goroutines"),             // the kernel's Go collector's
			gauge("other_items_created_total"), // another plugin's
			gauge(name+"_labelled", "plugin"),  // claims to be another plugin
		)
	}
	if p.op.HangMetrics {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name + "_never", Help: "Never answers."}, func() float64 {
			select {} // a collector stuck on a lock or a dead backend
		}))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

func (p *probe) Cleanup(context.Context) error { return nil }

func (p *probe) echo(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	cfg, given := withoutSecret(r.Config)
	out := map[string]any{
		"plugin": name, "version": version, "route": r.Route, "params": r.Params, "query": r.Query,
		"principal": r.Principal, "config": cfg, "request_id": r.RequestID,
		"headers": r.Header, "has_deadline": !r.Deadline.IsZero(),
		"api_key_given": given, "operator_api_key_sha256": digest(p.op.APIKey),
	}
	if r.Principal.TenantID != "" {
		// The setting in force: the institution's over the operator's.
		eff, err := sdk.Config[config](ctx, r)
		if err != nil {
			return nil, err
		}
		out["api_key_sha256"] = digest(eff.APIKey)
	}
	return sdk.JSON(http.StatusOK, out)
}

// withoutSecret is a configuration without its api_key, which the routes
// never answer, and the SHA-256 of the api_key it held ("" for none).
func withoutSecret(cfg json.RawMessage) (map[string]any, string) {
	var m map[string]any
	if err := json.Unmarshal(cfg, &m); err != nil || m == nil {
		m = map[string]any{}
	}
	key, _ := m["api_key"].(string)
	delete(m, "api_key")
	return m, digest(key)
}

func digest(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

func noop(context.Context, *sdk.Request) (*sdk.Response, error) { return sdk.NoContent() }

type item struct {
	ID       int64  `json:"id"`
	TenantID string `json:"tenant_id"`
	Name     string `json:"name"`
}

func (p *probe) addItem(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in newItem
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	if in.Name == "" {
		return nil, sdk.Invalid(sdk.FieldError{Field: "name", Message: "is required"})
	}
	tenant := r.Principal.TenantID
	if in.TenantID != "" {
		tenant = in.TenantID
	}
	var it item
	err := r.Tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, "INSERT INTO items (tenant_id, name) VALUES ($1, $2) RETURNING id, tenant_id, name", tenant, in.Name).
			Scan(&it.ID, &it.TenantID, &it.Name)
		if err != nil {
			return err
		}
		return r.Publish(ctx, tx, name+".item.created.v1", map[string]any{"id": it.ID, "name": it.Name})
	})
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrForbidden, "storing the item: %v", err)
	}
	p.created.Inc()
	return sdk.JSON(http.StatusCreated, it)
}

func (p *probe) listItems(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	items := []item{}
	err := r.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, "SELECT id, tenant_id, name FROM items ORDER BY id")
		if err != nil {
			return err
		}
		var it item
		_, err = pgx.ForEachRow(rows, []any{&it.ID, &it.TenantID, &it.Name}, func() error {
			items = append(items, it)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"items": items})
}

// sql runs one of a fixed set of probing queries and reports the error, if
// any: the tests use it to show what the plugin's role cannot do.
func (p *probe) sql(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	queries := map[string]string{
		"kernel_users":    "SELECT count(*) FROM kernel.users",
		"other_plugin":    "SELECT count(*) FROM plugin_other.items",
		"disable_rls":     "ALTER TABLE items DISABLE ROW LEVEL SECURITY",
		"no_tenant_count": "SELECT count(*) FROM items",
		"current_user":    "SELECT current_user",
	}
	q, ok := queries[r.Query.Get("q")]
	if !ok {
		return nil, sdk.Invalid(sdk.FieldError{Field: "q", Message: "unknown probe"})
	}
	var out any
	var err error
	if r.Query.Get("q") == "no_tenant_count" {
		// No tenant set at all: RLS must hide every row.
		err = p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error { return tx.QueryRow(ctx, q).Scan(&out) })
	} else {
		err = r.Tx(ctx, func(tx pgx.Tx) error { return tx.QueryRow(ctx, q).Scan(&out) })
	}
	res := map[string]any{"result": out}
	if err != nil {
		res["error"] = err.Error()
	}
	return sdk.JSON(http.StatusOK, res)
}

func sleep(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	ms, _ := strconv.Atoi(r.Query.Get("ms"))
	if hold := r.Query.Get("hold"); hold != "" {
		// Held while the file exists: a test decides when the request ends.
		for {
			if _, err := os.Stat(hold); err != nil {
				return sdk.JSON(http.StatusOK, map[string]any{"held": true, "version": version})
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	}
	select {
	case <-time.After(time.Duration(ms) * time.Millisecond):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return sdk.JSON(http.StatusOK, map[string]any{"slept_ms": ms, "version": version})
}

func crash(context.Context, *sdk.Request) (*sdk.Response, error) {
	os.Exit(2)
	return nil, errors.New("unreachable")
}

func invalid(context.Context, *sdk.Request) (*sdk.Response, error) {
	return nil, sdk.Invalid(sdk.FieldError{Field: "title", Message: "must not be empty"})
}

func panics(context.Context, *sdk.Request) (*sdk.Response, error) { panic("the test asked for it") }

func (p *probe) host(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	cfg, enabled, err := p.env.Host.TenantConfig(ctx, r.Principal.TenantID)
	if err != nil {
		return nil, err
	}
	own, err := p.env.Host.Authorize(ctx, r.Principal, name+".item.write", sdk.Resource{Type: "item", ID: "1", TenantID: r.Principal.TenantID})
	if err != nil {
		return nil, err
	}
	foreign, err := p.env.Host.Authorize(ctx, r.Principal, name+".item.read", sdk.Resource{Type: "item", ID: "2", TenantID: "00000000-0000-0000-0000-000000000001"})
	if err != nil {
		return nil, err
	}
	err = p.env.Host.Audit(ctx, sdk.AuditEntry{TenantID: r.Principal.TenantID, Actor: r.Principal, Action: name + ".item.inspected", TargetType: "item", TargetID: "1", Details: map[string]any{"why": "test"}, RequestID: r.RequestID})
	if err != nil {
		return nil, err
	}
	shown, given := withoutSecret(cfg)
	return sdk.JSON(http.StatusOK, map[string]any{"config": shown, "api_key_given": given, "enabled": enabled, "may_write_own": own, "may_read_foreign": foreign})
}

func schedule() string {
	if tick != "" {
		return tick
	}
	return "*/5 * * * *"
}

func (p *probe) subscriptions() []sdk.Subscription {
	var out []sdk.Subscription
	for _, t := range strings.Split(subscribe, ",") {
		if t == "" {
			continue
		}
		t, policy, _ := strings.Cut(t, "@")
		sub := sdk.Subscription{Type: strings.TrimRight(t, "+*"), Ordered: strings.Contains(t, "+"), Handler: p.handle}
		if strings.Contains(t, "*") {
			sub.Handler, sub.Batch = nil, p.handleBatch
		}
		switch policy {
		case "retained":
			sub.CatchUp = sdk.CatchUpRetained()
		case "hour":
			sub.CatchUp = sdk.CatchUpWindow(time.Hour)
		}
		out = append(out, sub)
	}
	return out
}

var (
	crashedOnce atomic.Bool
	pings       atomic.Int64 // pings this process began handling
)

// holdEvents waits while the hold file exists, once the process has handled
// hold_events_after pings.
func (p *probe) holdEvents(ctx context.Context, ev *sdk.Event) error {
	if p.op.HoldEventsFile == "" || !strings.HasSuffix(ev.Type, ".ping.sent.v1") || pings.Add(1) <= p.op.HoldEventsAfter {
		return nil
	}
	// "<file>.held" tells a test that a delivery is held now.
	if _, err := os.Stat(p.op.HoldEventsFile); err == nil {
		_ = os.WriteFile(p.op.HoldEventsFile+".held", nil, 0o600)
	}
	for {
		if _, err := os.Stat(p.op.HoldEventsFile); err != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// received is what the plugin records of an event it handles.
type received struct {
	SentNs *int64  `json:"sent_ns"`
	N      *int    `json:"n"`
	Token  *string `json:"token"`
}

// check applies the operator's test switches to an event the handler was
// entered for.
func (p *probe) check(ctx context.Context, ev *sdk.Event) (received, error) {
	if p.op.CrashOnEvent && crashedOnce.CompareAndSwap(false, true) {
		os.Exit(9)
	}
	if p.op.SlowEventsMs > 0 {
		time.Sleep(time.Duration(p.op.SlowEventsMs) * time.Millisecond)
	}
	if err := p.holdEvents(ctx, ev); err != nil {
		return received{}, err
	}
	if p.op.FailEvents {
		return received{}, errors.New("this plugin fails every delivery (fail_events)")
	}
	var data received
	if err := ev.Decode(&data); err != nil {
		return data, err
	}
	if f := p.op.FailPingN; f != nil && data.N != nil && *data.N == *f && ev.Attempt <= p.op.FailPingAttempts {
		return data, fmt.Errorf("ping %d fails until attempt %d (fail_ping_n)", *f, p.op.FailPingAttempts+1)
	}
	return data, nil
}

// handle records the event once (Event.Tx deduplicates redeliveries).
func (p *probe) handle(ctx context.Context, ev *sdk.Event) error {
	entered := time.Now().UnixNano()
	data, err := p.check(ctx, ev)
	if err != nil {
		return err
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO received (event_id, type, tenant, attempt, sent_ns, entered_ns, token) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			ev.ID, ev.Type, ev.TenantID, ev.Attempt, data.SentNs, entered, data.Token)
		return err
	})
}

// handleBatch records a batch of events once each, in one statement
// (Batch.Tx deduplicates redeliveries).
func (p *probe) handleBatch(ctx context.Context, b *sdk.Batch) error {
	entered := time.Now().UnixNano()
	return b.Tx(ctx, func(tx pgx.Tx, evs []*sdk.Event) error {
		ids, attempts := make([]string, len(evs)), make([]int32, len(evs))
		sent := make([]*int64, len(evs))
		for i, ev := range evs {
			data, err := p.check(ctx, ev)
			if err != nil {
				return err
			}
			ids[i], attempts[i], sent[i] = ev.ID, int32(ev.Attempt), data.SentNs
		}
		_, err := tx.Exec(ctx, `INSERT INTO received (event_id, type, tenant, attempt, sent_ns, entered_ns)
			SELECT id, $2, $3, attempt, sent, $6 FROM unnest($1::uuid[], $4::int[], $5::bigint[]) AS r(id, attempt, sent)`,
			ids, b.Type, b.TenantID, attempts, sent, entered)
		return err
	})
}

// publish writes n pings in one transaction, each stamped just before commit.
func (p *probe) publish(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	n, _ := strconv.Atoi(r.Query.Get("n"))
	if n <= 0 {
		n = 1
	}
	err := r.Tx(ctx, func(tx pgx.Tx) error {
		for i := range n {
			data := map[string]any{"n": i, "sent_ns": time.Now().UnixNano()}
			if r.Query.Get("bad") != "" {
				data = map[string]any{"n": "not a number", "sent_ns": 0}
			}
			if err := r.Publish(ctx, tx, name+".ping.sent.v1", data); err != nil {
				return sdk.Invalid(sdk.FieldError{Field: "data", Message: err.Error()})
			}
		}
		if r.Query.Get("rollback") != "" {
			return sdk.Errorf(sdk.ErrConflict, "rolled back on purpose after publishing %d events", n)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"published": n})
}

func (p *probe) logJob(ctx context.Context, run *sdk.JobRun) error {
	return p.recordRun(ctx, run)
}

func (p *probe) recordRun(ctx context.Context, run *sdk.JobRun) error {
	_, err := p.env.DB.Pool.Exec(ctx, "INSERT INTO job_log (run_id, attempt, job, tenant, trigger, scheduled_at) VALUES ($1, $2, $3, $4, $5, $6)",
		run.ID, run.Attempt, run.Job, run.TenantID, run.Trigger, run.ScheduledAt)
	run.SetOutput("logged attempt " + strconv.Itoa(run.Attempt))
	return err
}

func (p *probe) flaky(ctx context.Context, run *sdk.JobRun) error {
	if err := p.recordRun(ctx, run); err != nil {
		return err
	}
	var args struct {
		SucceedOn int `json:"succeed_on"`
	}
	_ = json.Unmarshal(run.Args, &args)
	if run.Attempt < args.SucceedOn || args.SucceedOn == 0 {
		return errors.New("flaky: failing attempt " + strconv.Itoa(run.Attempt))
	}
	return nil
}

func (p *probe) slow(ctx context.Context, run *sdk.JobRun) error {
	if err := p.recordRun(ctx, run); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(10 * time.Second):
		return nil
	}
}
