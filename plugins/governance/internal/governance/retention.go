package governance

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// SignPurposeExecution is the purpose of an execution's signature.
const SignPurposeExecution = Name + ".retention.execution"

// ExecutionDocumentType names the signed document of an execution.
const ExecutionDocumentType = "edulure.governance.retention_execution.v1"

// RetentionClass is a data class some plugin enabled for the institution
// declares, with the institution's policy for it.
type RetentionClass struct {
	sdk.RetentionClassInfo
	Policy *Policy `json:"policy"`
}

// Policy is an institution's retention policy for one data class.
type Policy struct {
	Plugin     string    `json:"plugin"`
	Class      string    `json:"class"`
	PeriodDays int       `json:"period_days"`
	Action     string    `json:"action" enum:"delete,anonymise,archive"`
	CreatedBy  string    `json:"created_by"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// PolicyInput sets a policy.
type PolicyInput struct {
	PeriodDays int    `json:"period_days" minimum:"1" maximum:"36500" doc:"rows older than this many days are expired"`
	Action     string `json:"action" enum:"delete,anonymise,archive"`
}

// ExecutionInput starts an execution.
type ExecutionInput struct {
	DryRun bool `json:"dry_run,omitempty" doc:"count what would be done, and change nothing"`
}

// ClassResult is what retention did (or would do) to one class.
type ClassResult struct {
	Plugin     string    `json:"plugin"`
	Class      string    `json:"class"`
	Action     string    `json:"action"`
	PeriodDays int       `json:"period_days"`
	Cutoff     time.Time `json:"cutoff"`
	Matched    int64     `json:"matched"`
	Affected   int64     `json:"affected"`
	SampleIDs  []string  `json:"sample_ids"`
	Archived   []string  `json:"archived"`
	Holds      int       `json:"holds" doc:"active holds passed to the plugin"`
	// SuspendedBy lists holds of kinds the class cannot tell apart: the
	// class is left alone while they are active.
	SuspendedBy []string `json:"suspended_by" doc:"IDs of active holds of a kind this class cannot evaluate: it is left alone while they last"`
	Attempts    int      `json:"attempts"`
	Error       string   `json:"error"`
}

// Report is a dry run's or execution's outcome: the signed document of an
// execution.
type Report struct {
	Type         string        `json:"type"`
	ExecutionID  string        `json:"execution_id,omitempty"`
	TenantID     string        `json:"tenant_id"`
	Trigger      string        `json:"trigger" enum:"manual,schedule,preview"`
	DryRun       bool          `json:"dry_run"`
	ScheduledFor *time.Time    `json:"scheduled_for"`
	StartedAt    time.Time     `json:"started_at"`
	FinishedAt   time.Time     `json:"finished_at"`
	DurationMs   int64         `json:"duration_ms"`
	PolicyHash   string        `json:"policy_hash" doc:"SHA-256 of the policies and active holds in force, canonical JSON"`
	Status       string        `json:"status" enum:"succeeded,failed"`
	Matched      int64         `json:"matched"`
	Affected     int64         `json:"affected"`
	Failures     int           `json:"failures"`
	Results      []ClassResult `json:"results"`
}

// Execution is a recorded execution with its signed document.
type Execution struct {
	ID           string         `json:"id" format:"uuid"`
	Trigger      string         `json:"trigger" enum:"manual,schedule"`
	DryRun       bool           `json:"dry_run"`
	ScheduledFor *time.Time     `json:"scheduled_for"`
	Status       string         `json:"status" enum:"succeeded,failed"`
	PolicyHash   string         `json:"policy_hash"`
	StartedAt    time.Time      `json:"started_at"`
	FinishedAt   time.Time      `json:"finished_at"`
	DurationMs   int64          `json:"duration_ms"`
	Matched      int64          `json:"matched"`
	Affected     int64          `json:"affected"`
	Failures     int            `json:"failures"`
	StartedBy    *string        `json:"started_by"`
	EvidenceID   *string        `json:"evidence_id"`
	Payload      string         `json:"payload" doc:"the signed document, exactly as signed (JSON text)"`
	Signature    *sdk.Signature `json:"signature" doc:"the kernel's signature of payload: verify it with /.well-known/jwks.json"`
}

// ExecutionSummary is an execution in a list.
type ExecutionSummary struct {
	ID           string     `json:"id" format:"uuid"`
	Trigger      string     `json:"trigger"`
	DryRun       bool       `json:"dry_run"`
	ScheduledFor *time.Time `json:"scheduled_for"`
	Status       string     `json:"status"`
	PolicyHash   string     `json:"policy_hash"`
	StartedAt    time.Time  `json:"started_at"`
	DurationMs   int64      `json:"duration_ms"`
	Matched      int64      `json:"matched"`
	Affected     int64      `json:"affected"`
	Failures     int        `json:"failures"`
}

// ExecutionEvent is the data of governance.retention.executed.v1.
type ExecutionEvent struct {
	ExecutionID string `json:"execution_id" format:"uuid"`
	Trigger     string `json:"trigger"`
	DryRun      bool   `json:"dry_run"`
	Status      string `json:"status" enum:"succeeded,failed"`
	PolicyHash  string `json:"policy_hash"`
	Matched     int64  `json:"matched"`
	Affected    int64  `json:"affected"`
	Failures    int    `json:"failures"`
	// Failed names each class whose retention call failed: plugin.class.
	Failed []string `json:"failed"`
}

// The events the plugin publishes.
const (
	EventRetentionExecuted = "governance.retention.executed.v1"
	EventRetentionFailed   = "governance.retention.failed.v1"
)

func (p *Plugin) retentionRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/governance/retention/classes", Permission: PermRetentionRead,
			Summary: "The data classes the institution's plugins declare, with its policy for each", Response: []RetentionClass{}, Handler: p.listClasses},
		{Method: "GET", Path: "/api/v1/governance/retention/policies", Permission: PermRetentionRead,
			Summary: "The institution's retention policies", Response: []Policy{}, Handler: p.listPolicies},
		{Method: "PUT", Path: "/api/v1/governance/retention/policies/{plugin}/{class}", Permission: PermRetentionManage,
			Summary: "Set the retention policy of a data class", Request: PolicyInput{}, Response: Policy{}, Handler: p.putPolicy},
		{Method: "DELETE", Path: "/api/v1/governance/retention/policies/{plugin}/{class}", Permission: PermRetentionManage,
			Summary: "Remove a data class's retention policy", Status: http.StatusNoContent, Handler: p.deletePolicy},
		{Method: "GET", Path: "/api/v1/governance/retention/holds", Permission: PermRetentionRead,
			Summary: "Legal holds, newest first", Query: HoldQuery{}, Paginated: true, Response: sdk.Page[Hold]{}, Handler: p.listHolds},
		{Method: "POST", Path: "/api/v1/governance/retention/holds", Permission: PermRetentionManage,
			Summary: "Place a legal hold", Request: HoldInput{}, Response: Hold{}, Status: http.StatusCreated, Handler: p.placeHold},
		{Method: "POST", Path: "/api/v1/governance/retention/holds/{hold_id}/release", Permission: PermRetentionManage,
			Summary: "Release a legal hold", Response: Hold{}, Handler: p.releaseHold},
		{Method: "POST", Path: "/api/v1/governance/retention/dry-run", Permission: PermRetentionRead,
			Summary: "Count what retention would do now: per plugin and class, with sample IDs and the policy set's hash", Response: Report{}, Handler: p.dryRun},
		{Method: "POST", Path: "/api/v1/governance/retention/executions", Permission: PermRetentionManage,
			Summary: "Execute retention now (or a recorded dry run), recorded and signed", Request: ExecutionInput{}, Response: Execution{}, Status: http.StatusCreated, Handler: p.execute},
		{Method: "GET", Path: "/api/v1/governance/retention/executions", Permission: PermRetentionRead,
			Summary: "Retention executions, newest first", Paginated: true, Response: sdk.Page[ExecutionSummary]{}, Handler: p.listExecutions},
		{Method: "GET", Path: "/api/v1/governance/retention/executions/{execution_id}", Permission: PermRetentionRead,
			Summary: "An execution with its signed document", Response: Execution{}, Handler: p.getExecution},
	}
}

func (p *Plugin) listClasses(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	infos, err := req.Host().RetentionClasses(ctx, req.Tenant())
	if err != nil {
		return nil, err
	}
	pols, _, err := loadPolicySet(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make([]RetentionClass, 0, len(infos))
	for _, i := range infos {
		c := RetentionClass{RetentionClassInfo: i}
		for _, pol := range pols {
			if pol.Plugin == i.Plugin && pol.Class == i.Name {
				c.Policy = &pol
			}
		}
		if c.Actions == nil {
			c.Actions = []sdk.RetentionAction{}
		}
		if c.HoldKinds == nil {
			c.HoldKinds = []string{}
		}
		out = append(out, c)
	}
	return sdk.JSON(http.StatusOK, out)
}

const policyColumns = `plugin, class, period_days, action, created_by, created_at, updated_at`

func scanPolicy(row pgx.Row) (Policy, error) {
	var pol Policy
	err := row.Scan(&pol.Plugin, &pol.Class, &pol.PeriodDays, &pol.Action, &pol.CreatedBy, &pol.CreatedAt, &pol.UpdatedAt)
	return pol, err
}

// loadPolicySet reads the policies and the active holds.
func loadPolicySet(ctx context.Context, s sdk.Scope) ([]Policy, []Hold, error) {
	var pols []Policy
	var holds []Hold
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		pols, holds, err = readPolicySet(ctx, tx)
		return err
	})
	return pols, holds, err
}

// readPolicySet reads the policies and the active holds in tx.
func readPolicySet(ctx context.Context, tx pgx.Tx) ([]Policy, []Hold, error) {
	rows, err := tx.Query(ctx, `SELECT `+policyColumns+` FROM retention_policies ORDER BY plugin, class`)
	if err != nil {
		return nil, nil, err
	}
	pols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Policy, error) { return scanPolicy(r) })
	if err != nil {
		return nil, nil, err
	}
	rows, err = tx.Query(ctx, `SELECT `+holdColumns+` FROM legal_holds WHERE released_at IS NULL ORDER BY kind, subject_id NULLS FIRST, id`)
	if err != nil {
		return nil, nil, err
	}
	holds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hold, error) { return scanHold(r) })
	return pols, holds, err
}

// policyHash is the SHA-256 of the policy set in force: the policies
// (plugin, class, period, action) and the active holds (ID, kind,
// subject), sorted, as canonical JSON. The same hash means the same
// selection rules.
func policyHash(pols []Policy, holds []Hold) string {
	type pj struct {
		Plugin     string `json:"plugin"`
		Class      string `json:"class"`
		PeriodDays int    `json:"period_days"`
		Action     string `json:"action"`
	}
	type hj struct {
		ID        string `json:"id"`
		Kind      string `json:"kind"`
		SubjectID string `json:"subject_id"`
	}
	doc := struct {
		Policies []pj `json:"policies"`
		Holds    []hj `json:"holds"`
	}{Policies: []pj{}, Holds: []hj{}}
	for _, p := range pols {
		doc.Policies = append(doc.Policies, pj{p.Plugin, p.Class, p.PeriodDays, p.Action})
	}
	for _, h := range holds {
		doc.Holds = append(doc.Holds, hj{h.ID, h.Kind, deref(h.SubjectID)})
	}
	sort.Slice(doc.Policies, func(i, j int) bool {
		return doc.Policies[i].Plugin+"\x00"+doc.Policies[i].Class < doc.Policies[j].Plugin+"\x00"+doc.Policies[j].Class
	})
	sort.Slice(doc.Holds, func(i, j int) bool { return doc.Holds[i].ID < doc.Holds[j].ID })
	b, _ := json.Marshal(doc)
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func (p *Plugin) listPolicies(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	pols, _, err := loadPolicySet(ctx, req)
	if err != nil {
		return nil, err
	}
	if pols == nil {
		pols = []Policy{}
	}
	return sdk.JSON(http.StatusOK, pols)
}

// findClass is the class plugin.class among those enabled for the
// request's institution, or a 404 naming what is there.
func findClass(ctx context.Context, req *sdk.Request, plugin, class string) (sdk.RetentionClassInfo, error) {
	infos, err := req.Host().RetentionClasses(ctx, req.Tenant())
	if err != nil {
		return sdk.RetentionClassInfo{}, err
	}
	for _, i := range infos {
		if i.Plugin == plugin && i.Name == class {
			return i, nil
		}
	}
	return sdk.RetentionClassInfo{}, sdk.Errorf(sdk.ErrNotFound, "no retention class %s.%s among the plugins enabled for this institution (GET /api/v1/governance/retention/classes lists them)", plugin, class).WithCode("retention-class-unknown")
}

func (p *Plugin) putPolicy(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in PolicyInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	info, err := findClass(ctx, req, req.Param("plugin"), req.Param("class"))
	if err != nil {
		return nil, err
	}
	if !slices.Contains(info.Actions, sdk.RetentionAction(in.Action)) {
		return nil, sdk.Invalid(sdk.FieldError{Field: "action", Message: fmt.Sprintf("%s.%s supports %s", info.Plugin, info.Name, joinActions(info.Actions))})
	}
	var pol Policy
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		pol, err = scanPolicy(tx.QueryRow(ctx, `INSERT INTO retention_policies (plugin, class, period_days, action, created_by) VALUES ($1, $2, $3, $4, $5)
			ON CONFLICT (tenant_id, plugin, class) DO UPDATE SET period_days = EXCLUDED.period_days, action = EXCLUDED.action, updated_at = now()
			RETURNING `+policyColumns, info.Plugin, info.Name, in.PeriodDays, in.Action, actor(req.Principal)))
		return err
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.retention.policy.set", "governance_retention_policy", info.Plugin+"."+info.Name,
		map[string]any{"period_days": in.PeriodDays, "action": in.Action})
	return sdk.JSON(http.StatusOK, pol)
}

func joinActions(as []sdk.RetentionAction) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}

func (p *Plugin) deletePolicy(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	plugin, class := req.Param("plugin"), req.Param("class")
	var n int64
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM retention_policies WHERE plugin = $1 AND class = $2`, plugin, class)
		n = tag.RowsAffected()
		return err
	})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no retention policy for %s.%s", plugin, class)
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.retention.policy.remove", "governance_retention_policy", plugin+"."+class, nil)
	return sdk.NoContent()
}

// runOptions are how one retention run goes.
type runOptions struct {
	dryRun       bool
	trigger      string // manual, schedule, preview
	scheduledFor *time.Time
	samples      int
	maxAttempts  int
	backoff      time.Duration
	requestID    string
}

// runRetention applies every policy of s's institution: per class, the
// active holds it can evaluate go with the request, and a class with a
// hold of a kind it cannot evaluate is left alone. A failing call is
// retried with backoff up to maxAttempts, then reported in the class's
// result; the run goes on with the other classes.
// retentionLockKey is the institution's advisory lock between executions
// (exclusive, for their whole run) and hold placements (shared).
const retentionLockKey = `hashtextextended('governance.retention:' || current_setting('edulure.tenant_id'), 0)`

// runRetention runs the institution's policies. An execution (not a dry
// run) holds the institution's retention lock from reading the holds to
// its last class, so that no hold is placed meanwhile (a placement is then
// 409 retention-running): every hold placed before is honoured.
func (p *Plugin) runRetention(ctx context.Context, s sdk.Scope, o runOptions) (Report, error) {
	if o.dryRun {
		return p.applyPolicies(ctx, s, o, func() ([]Policy, []Hold, error) { return loadPolicySet(ctx, s) })
	}
	var rep Report
	ran := false
	err := s.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(`+retentionLockKey+`)`); err != nil {
			return err
		}
		var err error
		rep, err = p.applyPolicies(ctx, s, o, func() ([]Policy, []Hold, error) { return readPolicySet(ctx, tx) })
		ran = err == nil
		return err
	})
	if ran {
		// What ran goes on record even when the lock's transaction could
		// not end cleanly (a deadline that passed mid-run): the lock ends
		// with it either way.
		return rep, nil
	}
	return rep, err
}

// applyPolicies runs, class by class, the policies and holds load reads.
func (p *Plugin) applyPolicies(ctx context.Context, s sdk.Scope, o runOptions, load func() ([]Policy, []Hold, error)) (Report, error) {
	started := p.now()
	rep := Report{Type: ExecutionDocumentType, TenantID: s.Tenant(), Trigger: o.trigger, DryRun: o.dryRun, StartedAt: utc(started), Results: []ClassResult{}}
	if o.scheduledFor != nil {
		t := utc(*o.scheduledFor)
		rep.ScheduledFor = &t
	}
	pols, holds, err := load()
	if err != nil {
		return rep, err
	}
	rep.PolicyHash = policyHash(pols, holds)
	var infos []sdk.RetentionClassInfo
	if len(pols) > 0 {
		if infos, err = s.Host().RetentionClasses(ctx, s.Tenant()); err != nil {
			return rep, err
		}
	}
	for _, pol := range pols {
		r := ClassResult{Plugin: pol.Plugin, Class: pol.Class, Action: pol.Action, PeriodDays: pol.PeriodDays,
			Cutoff: utc(started.AddDate(0, 0, -pol.PeriodDays)), SampleIDs: []string{}, Archived: []string{}, SuspendedBy: []string{}}
		var info *sdk.RetentionClassInfo
		for i := range infos {
			if infos[i].Plugin == pol.Plugin && infos[i].Name == pol.Class {
				info = &infos[i]
			}
		}
		if info == nil {
			r.Error = fmt.Sprintf("no class %s.%s among the plugins enabled for the institution: the plugin is disabled, not loaded, or no longer declares it", pol.Plugin, pol.Class)
			rep.Results = append(rep.Results, r)
			continue
		}
		var rh []sdk.RetentionHold
		for _, h := range holds {
			if slices.Contains(info.HoldKinds, h.Kind) {
				rh = append(rh, sdk.RetentionHold{Kind: h.Kind, ID: deref(h.SubjectID)})
			} else {
				r.SuspendedBy = append(r.SuspendedBy, h.ID)
			}
		}
		r.Holds = len(rh)
		if len(r.SuspendedBy) > 0 {
			rep.Results = append(rep.Results, r)
			continue
		}
		req := sdk.RetentionRequest{TenantID: s.Tenant(), Class: pol.Class, Cutoff: r.Cutoff, Action: sdk.RetentionAction(pol.Action),
			DryRun: o.dryRun, Holds: rh, SampleLimit: o.samples, RequestID: o.requestID}
		backoff := o.backoff
		for r.Attempts = 1; ; r.Attempts++ {
			res, err := s.Host().ApplyRetention(ctx, pol.Plugin, req)
			if err == nil {
				r.Matched, r.Affected, r.Error = res.Matched, res.Affected, ""
				if res.SampleIDs != nil {
					r.SampleIDs = res.SampleIDs
				}
				if res.Archived != nil {
					r.Archived = res.Archived
				}
				break
			}
			r.Error = err.Error()
			if len(r.Error) > 1000 {
				r.Error = r.Error[:1000]
			}
			if r.Attempts >= o.maxAttempts || ctx.Err() != nil || errors.Is(err, sdk.ErrInvalid) || errors.Is(err, sdk.ErrForbidden) {
				break
			}
			if p.env != nil {
				p.env.Logger.Warn("retention call failed; retrying", "plugin", pol.Plugin, "class", pol.Class, "attempt", r.Attempts, "backoff", backoff, "error", err)
			}
			if err := p.sleep(ctx, backoff); err != nil {
				break
			}
			backoff *= 2
		}
		rep.Results = append(rep.Results, r)
	}
	rep.Status = "succeeded"
	for _, r := range rep.Results {
		rep.Matched += r.Matched
		rep.Affected += r.Affected
		if r.Error != "" {
			rep.Failures++
			rep.Status = "failed"
		}
	}
	finished := p.now()
	rep.FinishedAt, rep.DurationMs = utc(finished), finished.Sub(started).Milliseconds()
	return rep, nil
}

func (p *Plugin) optionsFor(ctx context.Context, s sdk.Scope, dryRun bool, trigger, requestID string) (runOptions, error) {
	cfg, err := sdk.Config[Config](ctx, s)
	if err != nil {
		return runOptions{}, err
	}
	return runOptions{dryRun: dryRun, trigger: trigger, samples: cfg.RetentionSampleLimit, maxAttempts: max(cfg.RetentionMaxFailures, 1),
		backoff: time.Duration(cfg.RetentionFailureBackoffMs) * time.Millisecond, requestID: requestID}, nil
}

func (p *Plugin) dryRun(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	o, err := p.optionsFor(ctx, req, true, "preview", req.RequestID)
	if err != nil {
		return nil, err
	}
	rep, err := p.runRetention(ctx, req, o)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, rep)
}

func (p *Plugin) execute(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in ExecutionInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	o, err := p.optionsFor(ctx, req, in.DryRun, "manual", req.RequestID)
	if err != nil {
		return nil, err
	}
	ex, err := p.executeAndRecord(ctx, req, o, req.Principal)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, ex)
}

// executeAndRecord runs retention, signs its report, records it, files
// it as evidence (executions that changed data), audits it and publishes
// governance.retention.executed.v1 (and .failed.v1 when a class failed).
func (p *Plugin) executeAndRecord(ctx context.Context, s sdk.Scope, o runOptions, who sdk.Principal) (Execution, error) {
	rep, err := p.runRetention(ctx, s, o)
	if err != nil {
		return Execution{}, err
	}
	// From here on the run is recorded whatever becomes of the request
	// that started it (a deadline that passed mid-run).
	ctx = context.WithoutCancel(ctx)
	rep.ExecutionID = uuid.NewString()
	payload, err := json.Marshal(rep)
	if err != nil {
		return Execution{}, err
	}
	// Signed before it is recorded: an execution whose record cannot be
	// signed is still recorded (what was deleted must be on file), with
	// the signing error in the audit log and the execution marked failed.
	// Signed even when the request that started it has ended (its
	// deadline passed mid-run): what was done is on record either way.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	sig, serr := s.Host().Sign(sctx, SignPurposeExecution, payload)
	cancel()
	ex := Execution{ID: rep.ExecutionID, Trigger: rep.Trigger, DryRun: rep.DryRun, ScheduledFor: rep.ScheduledFor, Status: rep.Status,
		PolicyHash: rep.PolicyHash, StartedAt: rep.StartedAt, FinishedAt: rep.FinishedAt, DurationMs: rep.DurationMs,
		Matched: rep.Matched, Affected: rep.Affected, Failures: rep.Failures, Payload: string(payload)}
	var sigJSON []byte
	if serr == nil {
		ex.Signature = &sig
		sigJSON, _ = json.Marshal(sig)
	} else {
		ex.Status = "failed"
		sigJSON, _ = json.Marshal(map[string]string{"error": serr.Error()})
	}
	var startedBy *string
	if o.trigger == "manual" && !who.Anonymous() {
		a := actor(who)
		startedBy = &a
		ex.StartedBy = startedBy
	}
	err = s.Tx(context.WithoutCancel(ctx), func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO retention_executions (id, trigger, dry_run, scheduled_for, status, policy_hash, started_at, finished_at, duration_ms,
			matched, affected, failures, payload, signature, started_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			ex.ID, ex.Trigger, ex.DryRun, ex.ScheduledFor, ex.Status, ex.PolicyHash, ex.StartedAt, ex.FinishedAt, ex.DurationMs,
			ex.Matched, ex.Affected, ex.Failures, payload, sigJSON, startedBy)
		if err != nil {
			return err
		}
		ev := ExecutionEvent{ExecutionID: ex.ID, Trigger: ex.Trigger, DryRun: ex.DryRun, Status: ex.Status, PolicyHash: ex.PolicyHash,
			Matched: ex.Matched, Affected: ex.Affected, Failures: ex.Failures, Failed: []string{}}
		for _, r := range rep.Results {
			if r.Error != "" {
				ev.Failed = append(ev.Failed, r.Plugin+"."+r.Class)
			}
		}
		if err := s.Publish(ctx, tx, EventRetentionExecuted, ev); err != nil {
			return err
		}
		if ex.Status == "failed" {
			return s.Publish(ctx, tx, EventRetentionFailed, ev)
		}
		return nil
	})
	if isUnique(err, "retention_executions_slot") {
		return Execution{}, sdk.Errorf(sdk.ErrConflict, "the scheduled run of %s was recorded by another run", ex.ScheduledFor).WithCode("retention-slot-taken")
	}
	if err != nil {
		return Execution{}, err
	}
	details := map[string]any{"execution_id": ex.ID, "dry_run": ex.DryRun, "status": ex.Status, "policy_hash": ex.PolicyHash,
		"matched": ex.Matched, "affected": ex.Affected, "failures": ex.Failures, "trigger": ex.Trigger}
	if serr != nil {
		details["signing_error"] = serr.Error()
	}
	auditor := who
	if o.trigger != "manual" {
		auditor = sdk.Principal{}
	}
	p.audit(ctx, s, auditor, o.requestID, "governance.retention.execute", "governance_retention_execution", ex.ID, details)
	if !ex.DryRun {
		doc, _ := json.Marshal(map[string]any{"payload": json.RawMessage(payload), "signature": ex.Signature})
		by := pluginActor
		if startedBy != nil {
			by = *startedBy
		}
		id, err := p.storeEvidence(context.WithoutCancel(ctx), s, "retention_execution", "Retention execution "+ex.StartedAt.Format(time.RFC3339), "application/json", doc, by, o.requestID)
		if err != nil {
			if p.env != nil {
				p.env.Logger.Error("filing a retention execution as evidence", "execution", ex.ID, "error", err)
			}
		} else {
			ex.EvidenceID = &id
			_ = s.Tx(context.WithoutCancel(ctx), func(tx pgx.Tx) error {
				_, err := tx.Exec(ctx, `UPDATE retention_executions SET evidence_id = $2 WHERE id = $1`, ex.ID, id)
				return err
			})
		}
	}
	return ex, nil
}

const executionColumns = `id, trigger, dry_run, scheduled_for, status, policy_hash, started_at, finished_at, duration_ms, matched, affected, failures, started_by, evidence_id, payload, signature`

func scanExecution(row pgx.Row) (Execution, error) {
	var ex Execution
	var payload, sig []byte
	err := row.Scan(&ex.ID, &ex.Trigger, &ex.DryRun, &ex.ScheduledFor, &ex.Status, &ex.PolicyHash, &ex.StartedAt, &ex.FinishedAt, &ex.DurationMs,
		&ex.Matched, &ex.Affected, &ex.Failures, &ex.StartedBy, &ex.EvidenceID, &payload, &sig)
	if err != nil {
		return ex, err
	}
	ex.Payload = string(payload)
	var s sdk.Signature
	if json.Unmarshal(sig, &s) == nil && s.JWS != "" {
		ex.Signature = &s
	}
	return ex, nil
}

func (p *Plugin) listExecutions(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return newestFirst(ctx, req, `SELECT id, trigger, dry_run, scheduled_for, status, policy_hash, started_at, duration_ms, matched, affected, failures
		FROM retention_executions WHERE true`, "started_at", "id", nil,
		func(r pgx.Row) (ExecutionSummary, error) {
			var e ExecutionSummary
			err := r.Scan(&e.ID, &e.Trigger, &e.DryRun, &e.ScheduledFor, &e.Status, &e.PolicyHash, &e.StartedAt, &e.DurationMs, &e.Matched, &e.Affected, &e.Failures)
			return e, err
		}, func(e ExecutionSummary) (time.Time, string) { return e.StartedAt, e.ID })
}

func (p *Plugin) getExecution(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("execution_id")
	if err != nil {
		return nil, err
	}
	var ex Execution
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		ex, err = scanExecution(tx.QueryRow(ctx, `SELECT `+executionColumns+` FROM retention_executions WHERE id = $1`, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no retention execution %s in this institution", id)
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, ex)
}
