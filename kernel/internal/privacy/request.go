package privacy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
)

// Request kinds.
const (
	KindErasure     = "erasure"
	KindOffboarding = "offboarding"
)

// Request states.
const (
	StateScheduled = "scheduled" // waiting out its cool-off
	StateCancelled = "cancelled"
	StateRunning   = "running"
	StateRetrying  = "retrying" // a step failed; the next attempt is at next_attempt_at
	StateFailed    = "failed"   // the automatic attempts are spent: an admin resumes it
	StateCompleted = "completed"
)

// Step states.
const (
	StepPending = "pending"
	StepRunning = "running"
	StepDone    = "done"
	StepFailed  = "failed"
)

// Step names besides "plugin:<name>".
const (
	StepKernelAccess = "kernel:access"
	StepKernelData   = "kernel:data"
	StepExport       = "export"
	pluginStep       = "plugin:"
)

// Request is an erasure of a person from an institution, or an
// institution's offboarding, with its steps and (from Get) its history.
type Request struct {
	ID       uuid.UUID `json:"id"`
	Kind     string    `json:"kind"`
	TenantID uuid.UUID `json:"tenant_id"`
	// TenantSlug: an offboarding's institution, named once it is gone.
	TenantSlug string     `json:"tenant_slug,omitempty"`
	UserID     *uuid.UUID `json:"user_id,omitempty"`
	// RequestedBy is who asked: "user:<id>", "apikey:<id>", "operator:<id>";
	// "erased" once that person was erased.
	RequestedBy string `json:"requested_by"`
	// Self: the person asked for their own erasure.
	Self  bool   `json:"self"`
	State string `json:"state"`
	// NotBefore is when it runs: the end of its cool-off.
	NotBefore     time.Time  `json:"not_before"`
	Round         int        `json:"round"`
	Attempts      int        `json:"attempts"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// Outcome: what became of the account ("account": "anonymised",
	// "kept"...), an offboarding's export.
	Outcome    map[string]any `json:"outcome"`
	CreatedAt  time.Time      `json:"created_at"`
	StartedAt  *time.Time     `json:"started_at,omitempty"`
	FinishedAt *time.Time     `json:"finished_at,omitempty"`
	// Verification: a completed erasure's export of the person, run again
	// once every step was done (verify.go); absent until then.
	Verification *Verification  `json:"verification,omitempty"`
	Steps        []Step         `json:"steps"`
	History      []HistoryEvent `json:"history,omitempty"`

	pseudonym uuid.UUID
	wasMember bool
}

// Step is one part of a request: one plugin's, or the kernel's.
type Step struct {
	Step       string     `json:"step"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	LastError  *string    `json:"last_error,omitempty"`
	Counts     []Count    `json:"counts"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Count is what a step changed (or, previewed, would change) in one table
// or data class.
type Count struct {
	Class      string `json:"class,omitempty"`
	Table      string `json:"table,omitempty"`
	Deleted    uint64 `json:"deleted,omitempty"`
	Anonymised uint64 `json:"anonymised,omitempty"`
	References uint64 `json:"references,omitempty"`
	Objects    uint64 `json:"objects,omitempty"`
	// Revoked: the kernel's sessions, keys or invitations revoked.
	Revoked uint64 `json:"revoked,omitempty"`
}

// HistoryEvent is one thing that happened to a request.
type HistoryEvent struct {
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
	Step   string    `json:"step,omitempty"`
	Actor  string    `json:"actor,omitempty"`
	Detail string    `json:"detail,omitempty"`
}

const requestColumns = `id, kind, tenant_id, tenant_slug, user_id, requested_by, self, state, not_before, round, attempts, next_attempt_at,
	outcome, created_at, started_at, finished_at, pseudonym, was_member, verification`

func scanRequest(row pgx.Row) (Request, error) {
	var r Request
	err := row.Scan(&r.ID, &r.Kind, &r.TenantID, &r.TenantSlug, &r.UserID, &r.RequestedBy, &r.Self, &r.State, &r.NotBefore, &r.Round,
		&r.Attempts, &r.NextAttemptAt, &r.Outcome, &r.CreatedAt, &r.StartedAt, &r.FinishedAt, &r.pseudonym, &r.wasMember, &r.Verification)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, sdk.Errorf(sdk.ErrNotFound, "no such request")
	}
	if r.Outcome == nil {
		r.Outcome = map[string]any{}
	}
	return r, err
}

// loadSteps adds the request's steps, in their order, and with history its
// history.
func loadSteps(ctx context.Context, q database.Querier, r *Request, history bool) error {
	rows, err := q.Query(ctx, `SELECT step, state, attempts, last_error, counts, started_at, finished_at
		FROM kernel.privacy_steps WHERE request_id = $1 ORDER BY position`, r.ID)
	if err != nil {
		return err
	}
	r.Steps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (Step, error) {
		var st Step
		err := row.Scan(&st.Step, &st.State, &st.Attempts, &st.LastError, &st.Counts, &st.StartedAt, &st.FinishedAt)
		if st.Counts == nil {
			st.Counts = []Count{}
		}
		return st, err
	})
	if err != nil || !history {
		return err
	}
	rows, err = q.Query(ctx, `SELECT at, event, step, actor, detail FROM kernel.privacy_history WHERE request_id = $1 ORDER BY id`, r.ID)
	if err != nil {
		return err
	}
	r.History, err = pgx.CollectRows(rows, pgx.RowToStructByPos[HistoryEvent])
	return err
}

// Get returns a request of the institution with its steps and history
// (an offboarding's tenant_id need not exist any more).
func (s *Service) Get(ctx context.Context, q database.Querier, tenantID, id uuid.UUID) (Request, error) {
	r, err := scanRequest(q.QueryRow(ctx, `SELECT `+requestColumns+` FROM kernel.privacy_requests WHERE id = $1 AND tenant_id = $2`, id, tenantID))
	if err != nil {
		return r, err
	}
	return r, loadSteps(ctx, q, &r, true)
}

// ListFilter selects requests.
type ListFilter struct {
	Kind   string
	UserID *uuid.UUID
	State  string
	Before uuid.UUID // uuid.Nil: from the newest
	Limit  int
}

// List returns an institution's requests, newest first, with their steps.
func (s *Service) List(ctx context.Context, q database.Querier, tenantID uuid.UUID, f ListFilter) ([]Request, error) {
	rows, err := q.Query(ctx, `SELECT `+requestColumns+` FROM kernel.privacy_requests
		WHERE tenant_id = $1 AND kind = $2 AND ($3::uuid IS NULL OR user_id = $3) AND ($4 = '' OR state = $4)
		  AND ($5::uuid = '00000000-0000-0000-0000-000000000000' OR id < $5)
		ORDER BY id DESC LIMIT $6`, tenantID, f.Kind, f.UserID, f.State, f.Before, f.Limit)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Request, error) { return scanRequest(row) })
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := loadSteps(ctx, q, &out[i], false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// history records one event of a request.
func history(ctx context.Context, q database.Querier, id uuid.UUID, event, step, actor, detail string) error {
	_, err := q.Exec(ctx, `INSERT INTO kernel.privacy_history (request_id, event, step, actor, detail) VALUES ($1, $2, $3, $4, $5)`,
		id, event, step, actor, detail)
	return err
}

// ErasureSpec is an erasure to ask for.
type ErasureSpec struct {
	TenantID, UserID uuid.UUID
	RequestedBy      string
	Self             bool
	// WasMember: the person is a member of the institution now; the
	// account is anonymised when this was their last institution.
	WasMember bool
	CoolOff   time.Duration
}

// RequestErasure records an erasure request in tx, with its steps, and
// queues it for the end of its cool-off. The caller has checked who may
// ask and audits the request. It is a conflict when one is open for the
// person in the institution.
func (s *Service) RequestErasure(ctx context.Context, tx pgx.Tx, spec ErasureSpec) (Request, error) {
	var open uuid.UUID
	err := tx.QueryRow(ctx, `SELECT id FROM kernel.privacy_requests WHERE kind = 'erasure' AND tenant_id = $1 AND user_id = $2
		AND state IN ('scheduled', 'running', 'retrying', 'failed')`, spec.TenantID, spec.UserID).Scan(&open)
	if err == nil {
		return Request{}, sdk.Errorf(sdk.ErrConflict, "an erasure of this person is already under way in this institution (request %s): cancel or resume it", open).WithCode("erasure-pending")
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Request{}, err
	}
	steps := append(append([]string{StepKernelAccess}, s.pluginSteps(KindErasure)...), StepKernelData)
	r, err := s.insertRequest(ctx, tx, Request{
		ID: uuid.Must(uuid.NewV7()), Kind: KindErasure, TenantID: spec.TenantID, UserID: &spec.UserID, RequestedBy: spec.RequestedBy,
		Self: spec.Self, State: StateScheduled, NotBefore: s.now().Add(spec.CoolOff), wasMember: spec.WasMember,
	}, steps)
	if database.IsUniqueViolation(err, "privacy_requests_open") {
		return Request{}, sdk.Errorf(sdk.ErrConflict, "an erasure of this person is already under way in this institution").WithCode("erasure-pending")
	}
	if err != nil {
		return r, err
	}
	detail := "runs at the end of its cool-off, " + r.NotBefore.Format(time.RFC3339)
	if spec.CoolOff <= 0 {
		detail = "runs now: the institution sets no cool-off"
	}
	if err := history(ctx, tx, r.ID, "requested", "", spec.RequestedBy, detail); err != nil {
		return r, err
	}
	return r, s.enqueue(ctx, tx, r, r.NotBefore)
}

func (s *Service) insertRequest(ctx context.Context, tx pgx.Tx, r Request, steps []string) (Request, error) {
	r.pseudonym = uuid.New()
	r.Round = 1
	r.Outcome = map[string]any{}
	err := tx.QueryRow(ctx, `INSERT INTO kernel.privacy_requests
		(id, kind, tenant_id, tenant_slug, user_id, requested_by, self, was_member, state, pseudonym, not_before)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING created_at`,
		r.ID, r.Kind, r.TenantID, r.TenantSlug, r.UserID, r.RequestedBy, r.Self, r.wasMember, r.State, r.pseudonym, r.NotBefore).Scan(&r.CreatedAt)
	if err != nil {
		return r, err
	}
	for i, st := range steps {
		pos := i
		if st == StepKernelData {
			pos = lastPosition
		}
		if _, err := tx.Exec(ctx, `INSERT INTO kernel.privacy_steps (request_id, step, position) VALUES ($1, $2, $3)`, r.ID, st, pos); err != nil {
			return r, err
		}
		r.Steps = append(r.Steps, Step{Step: st, State: StepPending, Counts: []Count{}})
	}
	return r, nil
}

// lastPosition is the kernel's data step's: after every plugin's, however
// many are added.
const lastPosition = 1 << 30

// pluginSteps are the plugin steps a request of kind needs now: for an
// erasure, every loaded plugin that declares personal data; for an
// offboarding, every loaded plugin.
func (s *Service) pluginSteps(kind string) []string {
	var out []string
	for _, p := range s.plugins.PersonalDataPlugins() {
		if kind == KindOffboarding || p.Classes {
			out = append(out, pluginStep+p.Name)
		}
	}
	return out
}

// addPluginSteps adds steps for plugins loaded since the request was made
// (installed during its cool-off, say): their data goes too.
func (s *Service) addPluginSteps(ctx context.Context, r *Request) error {
	have := map[string]bool{}
	for _, st := range r.Steps {
		have[st.Step] = true
	}
	added := false
	for _, st := range s.pluginSteps(r.Kind) {
		if have[st] {
			continue
		}
		_, err := s.pool.Exec(ctx, `INSERT INTO kernel.privacy_steps (request_id, step, position)
			SELECT $1, $2, coalesce(max(position) FILTER (WHERE position < $3), 0) + 1 FROM kernel.privacy_steps WHERE request_id = $1
			ON CONFLICT DO NOTHING`, r.ID, st, lastPosition)
		if err != nil {
			return err
		}
		if err := history(ctx, s.pool, r.ID, "step_added", st, system, "a plugin loaded since the request was made"); err != nil {
			return err
		}
		added = true
	}
	if added {
		return loadSteps(ctx, s.pool, r, false)
	}
	return nil
}

// enqueue queues a round of the request's steps at at.
func (s *Service) enqueue(ctx context.Context, tx pgx.Tx, r Request, at time.Time) error {
	if s.queue == nil {
		return errors.New("the job queue is not started")
	}
	opts := &river.InsertOpts{MaxAttempts: s.opts.MaxAttempts}
	if at.After(time.Now()) {
		opts.ScheduledAt = at // else available now: a worker is woken at once
	}
	_, err := s.queue.InsertTx(ctx, tx, requestArgs{RequestID: r.ID, Round: r.Round}, opts)
	return err
}

// Cancel cancels a request during its cool-off.
func (s *Service) Cancel(ctx context.Context, tx pgx.Tx, tenantID, id uuid.UUID, actor string) (Request, error) {
	r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM kernel.privacy_requests WHERE id = $1 AND tenant_id = $2 FOR UPDATE`, id, tenantID))
	if err != nil {
		return r, err
	}
	if r.State != StateScheduled {
		return r, sdk.Errorf(sdk.ErrConflict, "the request is %s: only a request waiting out its cool-off can be cancelled", r.State).WithCode("not-cancellable")
	}
	if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'cancelled', finished_at = now() WHERE id = $1`, id); err != nil {
		return r, err
	}
	if err := history(ctx, tx, id, "cancelled", "", actor, ""); err != nil {
		return r, err
	}
	return s.Get(ctx, tx, tenantID, id)
}

// Resume starts a new round of a failed request's unfinished steps now,
// with fresh automatic attempts: an admin's answer to a plugin that failed
// until its attempts were spent, once it is fixed.
func (s *Service) Resume(ctx context.Context, tx pgx.Tx, tenantID, id uuid.UUID, actor string) (Request, error) {
	r, err := scanRequest(tx.QueryRow(ctx, `SELECT `+requestColumns+` FROM kernel.privacy_requests WHERE id = $1 AND tenant_id = $2 FOR UPDATE`, id, tenantID))
	if err != nil {
		return r, err
	}
	switch r.State {
	case StateFailed:
	case StateRetrying:
		return r, sdk.Errorf(sdk.ErrConflict, "the request retries by itself, next at %s", r.NextAttemptAt.Format(time.RFC3339)).WithCode("not-resumable")
	default:
		return r, sdk.Errorf(sdk.ErrConflict, "the request is %s: only a failed request is resumed", r.State).WithCode("not-resumable")
	}
	r.Round++
	if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'running', round = $2, attempts = 0, next_attempt_at = NULL, finished_at = NULL WHERE id = $1`, id, r.Round); err != nil {
		return r, err
	}
	if err := history(ctx, tx, id, "resumed", "", actor, fmt.Sprintf("round %d", r.Round)); err != nil {
		return r, err
	}
	if err := s.enqueue(ctx, tx, r, s.now()); err != nil {
		return r, err
	}
	return s.Get(ctx, tx, tenantID, id)
}

// FormerMember reports whether a person who is not a member of the
// institution was one: the institution's audit chain names them (as the
// one who acted, or the target, as when they joined or were removed), or
// it asked for their export or erasure before. Someone who never belonged
// to it (another institution's member, an operator) is not the
// institution's to export or erase, nor to learn exists.
func FormerMember(ctx context.Context, q database.Querier, tenantID, userID uuid.UUID) (bool, error) {
	var known bool
	err := q.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM kernel.privacy_requests WHERE tenant_id = $1 AND user_id = $2)
		OR EXISTS (SELECT 1 FROM kernel.data_exports WHERE tenant_id = $1 AND user_id = $2)
		OR EXISTS (SELECT 1 FROM kernel.audit_personal WHERE chain = $4 AND (actor_id = $3 OR target = $3))`,
		tenantID, userID, userID.String(), audit.Chain(tenantID.String())).Scan(&known)
	return known, err
}
