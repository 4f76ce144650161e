package privacy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// requestArgs is one round of a request's steps; each River attempt is one
// attempt of the round.
type requestArgs struct {
	RequestID uuid.UUID `json:"request_id"`
	Round     int       `json:"round"`
}

func (requestArgs) Kind() string { return "edulure.privacy_request" }

type requestWorker struct {
	river.WorkerDefaults[requestArgs]
	s *Service
}

// Timeout: none for the round; each call into a plugin has its own.
func (w *requestWorker) Timeout(*river.Job[requestArgs]) time.Duration { return -1 }

// NextRetry is the request's backoff (next_attempt_at shows it).
func (w *requestWorker) NextRetry(job *river.Job[requestArgs]) time.Time {
	return time.Now().Add(w.s.backoff(job.Attempt))
}

const system = "system"

// Work runs one attempt of a round: every step not done yet, in order.
// The first step (the kernel's access, or the export) must be done before
// the others run; the last (the kernel's data) runs once all before it are
// done. It completes the request when every step is done; otherwise it
// fails the attempt (River retries it with backoff) or, the attempts spent,
// fails the request for an admin to resume.
func (w *requestWorker) Work(ctx context.Context, job *river.Job[requestArgs]) error {
	s := w.s
	r, err := scanRequest(s.pool.QueryRow(ctx, `SELECT `+requestColumns+` FROM kernel.privacy_requests WHERE id = $1`, job.Args.RequestID))
	if errors.Is(err, sdk.ErrNotFound) {
		return nil // gone with its institution
	}
	if err != nil {
		return err
	}
	if r.Round != job.Args.Round {
		return nil // an admin started another round
	}
	switch r.State {
	case StateCancelled, StateCompleted, StateFailed:
		return nil
	}
	if wait := r.NotBefore.Sub(s.now()); wait > 0 {
		return river.JobSnooze(wait) // the cool-off is not over (a replica's clock ahead)
	}
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if r.State == StateScheduled {
			if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'running', started_at = now(), attempts = $2, next_attempt_at = NULL WHERE id = $1`, r.ID, job.Attempt); err != nil {
				return err
			}
			if err := history(ctx, tx, r.ID, "started", "", system, ""); err != nil {
				return err
			}
			return s.auditRequest(ctx, tx, r, "started", nil)
		}
		if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'running', attempts = $2, next_attempt_at = NULL WHERE id = $1`, r.ID, job.Attempt); err != nil {
			return err
		}
		return history(ctx, tx, r.ID, "attempt", "", system, fmt.Sprintf("attempt %d of %d", job.Attempt, job.MaxAttempts))
	})
	if err != nil {
		return err
	}
	if err := loadSteps(ctx, s.pool, &r, false); err != nil {
		return err
	}
	if err := s.addPluginSteps(ctx, &r); err != nil {
		return err
	}
	var failed []string
	for i, st := range r.Steps {
		if st.State == StepDone {
			continue
		}
		if i > 0 && r.Steps[0].State != StepDone {
			break // the first step gates the others
		}
		if i == len(r.Steps)-1 && len(failed) > 0 {
			break // the last runs once all before it are done
		}
		counts, err := s.runStep(ctx, &r, st)
		if err != nil {
			failed = append(failed, st.Step)
			r.Steps[i].State = StepFailed
			if rerr := s.recordStep(ctx, r, st.Step, nil, err); rerr != nil {
				return rerr
			}
			continue
		}
		r.Steps[i].State = StepDone
		if err := s.recordStep(ctx, r, st.Step, counts, nil); err != nil {
			return err
		}
	}
	if len(failed) == 0 && allDone(r.Steps) {
		var data map[string]any
		detail := ""
		if r.Kind == KindErasure {
			// Every step is done: the person's export must now come back
			// empty. What it still holds is recorded, never hidden.
			v := s.verifyErased(ctx, r)
			r.Verification = &v
			data = map[string]any{"verified_empty": v.VerifiedEmpty}
			detail = verificationDetail(v)
		}
		return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'completed', finished_at = now(), outcome = $2, verification = $3 WHERE id = $1`,
				r.ID, r.Outcome, r.Verification); err != nil {
				return err
			}
			if r.Verification != nil {
				if err := history(ctx, tx, r.ID, "verified", "", system, detail); err != nil {
					return err
				}
			}
			if err := history(ctx, tx, r.ID, "completed", "", system, ""); err != nil {
				return err
			}
			if r.Kind == KindErasure {
				if err := erasureCompleted(ctx, tx, r); err != nil {
					return err
				}
			}
			return s.auditRequest(ctx, tx, r, "completed", data)
		})
	}
	detail := "failed: " + strings.Join(failed, ", ")
	if len(failed) == 0 {
		detail = "steps are left" // cannot happen: the loop runs each step it may
	}
	if job.Attempt >= job.MaxAttempts {
		err := database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'failed', outcome = $2 WHERE id = $1`, r.ID, r.Outcome); err != nil {
				return err
			}
			if err := history(ctx, tx, r.ID, "failed", "", system, fmt.Sprintf("%s; %d attempts spent: resume it once that is fixed", detail, job.Attempt)); err != nil {
				return err
			}
			return s.auditRequest(ctx, tx, r, "failed", map[string]any{"failed_steps": failed})
		})
		if err != nil {
			return err
		}
		return river.JobCancel(errors.New(detail))
	}
	next := s.now().Add(s.backoff(job.Attempt))
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_requests SET state = 'retrying', next_attempt_at = $2, outcome = $3 WHERE id = $1`, r.ID, next, r.Outcome); err != nil {
			return err
		}
		return history(ctx, tx, r.ID, "retrying", "", system, detail+"; next attempt at "+next.Format(time.RFC3339))
	})
	if err != nil {
		return err
	}
	return errors.New(detail)
}

func allDone(steps []Step) bool {
	for _, st := range steps {
		if st.State != StepDone {
			return false
		}
	}
	return true
}

// recordStep records a step's outcome: done with its counts, or failed.
func (s *Service) recordStep(ctx context.Context, r Request, step string, counts []Count, failure error) error {
	ctx = context.WithoutCancel(ctx)
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if failure != nil {
			if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_steps SET state = 'failed', last_error = $3, finished_at = now()
				WHERE request_id = $1 AND step = $2`, r.ID, step, errorText(failure)); err != nil {
				return err
			}
			return history(ctx, tx, r.ID, "step_failed", step, system, errorText(failure))
		}
		if counts == nil {
			counts = []Count{}
		}
		if _, err := tx.Exec(ctx, `UPDATE kernel.privacy_steps SET state = 'done', last_error = NULL, counts = $3, finished_at = now()
			WHERE request_id = $1 AND step = $2`, r.ID, step, counts); err != nil {
			return err
		}
		return history(ctx, tx, r.ID, "step_done", step, system, summarise(counts))
	})
}

func summarise(counts []Count) string {
	var d, a, ref, o uint64
	for _, c := range counts {
		d, a, ref, o = d+c.Deleted, a+c.Anonymised, ref+c.References, o+c.Objects
	}
	return fmt.Sprintf("%d deleted, %d anonymised, %d references, %d objects", d, a, ref, o)
}

// runStep marks a step running and runs it.
func (s *Service) runStep(ctx context.Context, r *Request, st Step) ([]Count, error) {
	if _, err := s.pool.Exec(ctx, `UPDATE kernel.privacy_steps SET state = 'running', attempts = attempts + 1, started_at = coalesce(started_at, now()), finished_at = NULL
		WHERE request_id = $1 AND step = $2`, r.ID, st.Step); err != nil {
		return nil, err
	}
	plugin, isPlugin := strings.CutPrefix(st.Step, pluginStep)
	switch {
	case r.Kind == KindErasure && st.Step == StepKernelAccess:
		return s.eraseAccess(ctx, r)
	case r.Kind == KindErasure && st.Step == StepKernelData:
		return s.erasePersonKernel(ctx, r)
	case r.Kind == KindErasure && isPlugin:
		return s.erasePersonPlugin(ctx, r, plugin)
	case r.Kind == KindOffboarding && st.Step == StepExport:
		return s.exportInstitution(ctx, r)
	case r.Kind == KindOffboarding && isPlugin:
		return s.eraseTenantPlugin(ctx, r, plugin, false)
	case r.Kind == KindOffboarding && st.Step == StepKernelData:
		return s.eraseTenantKernel(ctx, r, false)
	}
	return nil, fmt.Errorf("unknown step %q of a %s", st.Step, r.Kind)
}

// erasePersonPlugin asks a plugin to erase the person, with the request's
// pseudonym, so that a resumed erasure keeps to one.
func (s *Service) erasePersonPlugin(ctx context.Context, r *Request, plugin string) ([]Count, error) {
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	resp, err := s.plugins.ErasePersonalData(ctx, plugin, &pluginv1.PersonalDataEraseRequest{
		TenantId: r.TenantID.String(), UserId: r.UserID.String(), RequestId: r.ID.String(), Pseudonym: r.pseudonym.String(),
	})
	if err != nil {
		return nil, err
	}
	return countsOf(resp.GetCounts()), nil
}

func countsOf(in []*pluginv1.ErasureCount) []Count {
	out := make([]Count, 0, len(in))
	for _, c := range in {
		out = append(out, Count{Class: c.Class, Table: c.Table, Deleted: c.Deleted, Anonymised: c.Anonymised, References: c.References, Objects: c.Objects})
	}
	return out
}

// auditRequest appends a request's transition to the audit log: an
// erasure's to its institution's chain, an offboarding's to the
// platform's. The entry names the request, not the person.
func (s *Service) auditRequest(ctx context.Context, tx pgx.Tx, r Request, what string, data map[string]any) error {
	if data == nil {
		data = map[string]any{}
	}
	data[r.Kind+"_id"] = r.ID.String()
	e := audit.Entry{ActorType: system, ActorID: "privacy", Action: "privacy." + r.Kind + "." + what, Target: r.Kind + ":" + r.ID.String(), Data: data}
	if r.Kind == KindErasure {
		e.TenantID = r.TenantID.String()
	} else {
		data["tenant_id"] = r.TenantID.String()
		data["slug"] = r.TenantSlug
	}
	return audit.Append(ctx, tx, e)
}

// erasureCompleted publishes privacy.erasure.completed.v1: what each step
// changed, per data class and table, as the steps recorded it. It names
// the request, never the person (no user ID, no pseudonym), so that a
// receipt made from it holds no personal data.
func erasureCompleted(ctx context.Context, tx pgx.Tx, r Request) error {
	done := r
	if err := loadSteps(ctx, tx, &done, false); err != nil {
		return err
	}
	type stepCounts struct {
		Step   string  `json:"step"`
		Counts []Count `json:"counts"`
	}
	steps := make([]stepCounts, 0, len(done.Steps))
	for _, st := range done.Steps {
		counts := st.Counts
		if counts == nil {
			counts = []Count{}
		}
		steps = append(steps, stepCounts{Step: st.Step, Counts: counts})
	}
	data := map[string]any{"erasure_id": r.ID, "self": r.Self, "completed_at": time.Now().UTC(), "steps": steps}
	if r.Verification != nil {
		data["verification"] = r.Verification
	}
	if r.StartedAt != nil {
		data["started_at"] = r.StartedAt.UTC()
	}
	_, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.ErasureCompleted, TenantID: r.TenantID.String(), Actor: system + ":privacy", Data: data})
	return err
}
