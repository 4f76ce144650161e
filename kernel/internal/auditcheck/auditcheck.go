// Package auditcheck signs checkpoints of the audit chains and verifies
// the chains against them (docs/security.md, "Audit checkpoints").
//
// Every hour (and on an operator's demand) each chain, every institution's
// and the platform's, is verified: its hashes and links from the first
// entry (audit.Verify), then its last checkpoint: the signed note must
// verify with one of the kernel's keys, and the chain must still hold the
// checkpoint's head (an entry at its sequence with its hash). A chain that
// fails publishes audit.verification.failed.v1 and gets no new checkpoint,
// so the last good one stays the reference. A chain that verifies and grew
// gets a new checkpoint: a signed note of its head, published as
// audit.checkpoint.signed.v1, stored append-only in
// kernel.audit_checkpoints and served at GET /api/v1/tenant/audit/checkpoints
// (and /api/v1/admin/audit/checkpoints), to be kept elsewhere by whoever
// wants to catch a truncation or rewrite later.
package auditcheck

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hashicorp/go-hclog"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"golang.org/x/mod/sumdb/note"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/token"
)

// Every is how often the checkpoint job runs.
const Every = time.Hour

// noteHeader is the first line of a checkpoint's text.
const noteHeader = "edulure audit checkpoint"

// Checkpoint is a signed checkpoint of a chain's head.
type Checkpoint struct {
	Chain    string `json:"chain" doc:"The institution's ID, or \"platform\"."`
	TenantID string `json:"tenant_id,omitempty" format:"uuid"`
	Seq      int64  `json:"seq" doc:"The head's sequence number: the chain had this many entries."`
	Hash     string `json:"hash" doc:"The head's hash, base64 (as in the note)."`
	KeyID    string `json:"key_id" doc:"The signing key, a kid of /.well-known/jwks.json."`
	// VerifierKey verifies Note with golang.org/x/mod/sumdb/note
	// (note.NewVerifier), made from the key's public half.
	VerifierKey string    `json:"verifier_key"`
	Note        string    `json:"note" doc:"The signed note: its text (header, chain, seq, hash, time) and signature line."`
	CreatedAt   time.Time `json:"created_at"`
}

// Result is one chain's verification.
type Result struct {
	Chain    string `json:"chain"`
	Valid    bool   `json:"valid"`
	Entries  int64  `json:"entries"`
	BrokenAt int64  `json:"broken_at_seq,omitempty"`
	Reason   string `json:"reason,omitempty"`
	// CheckpointSeq is the sequence of the last checkpoint the chain was
	// compared with (0: none yet).
	CheckpointSeq int64 `json:"checkpoint_seq,omitempty"`
	// Signed is the sequence of the checkpoint this run signed (0: none,
	// the chain did not grow or did not verify).
	Signed int64 `json:"signed,omitempty"`
}

// Service checks and signs.
type Service struct {
	pool    *pgxpool.Pool
	keyring *token.Keyring
	logger  hclog.Logger
	now     func() time.Time
}

// New makes the service.
func New(pool *pgxpool.Pool, keyring *token.Keyring, logger hclog.Logger) *Service {
	return &Service{pool: pool, keyring: keyring, logger: logger.Named("auditcheck"), now: time.Now}
}

type runArgs struct{}

func (runArgs) Kind() string { return "edulure.audit_checkpoint" }

type worker struct {
	river.WorkerDefaults[runArgs]
	s *Service
}

func (w *worker) Work(ctx context.Context, _ *river.Job[runArgs]) error {
	results, err := w.s.Run(ctx)
	if err != nil {
		return err
	}
	for _, r := range results {
		if !r.Valid {
			w.s.logger.Error("audit chain verification failed", "chain", r.Chain, "reason", r.Reason, "broken_at_seq", r.BrokenAt)
		}
	}
	return nil
}

// Register adds the checkpoint job to the job queue (jobs.Options.Register).
func (s *Service) Register(w *river.Workers) error { return river.AddWorkerSafely(w, &worker{s: s}) }

// Start schedules the job every hour on the queue.
func (s *Service) Start(queue *river.Client[pgx.Tx]) error {
	_, err := queue.PeriodicJobs().AddSafely(river.NewPeriodicJob(river.PeriodicInterval(Every),
		func() (river.JobArgs, *river.InsertOpts) { return runArgs{}, nil },
		&river.PeriodicJobOpts{ID: "edulure/audit-checkpoint"}))
	return err
}

// Run verifies every chain against its last checkpoint and signs a new
// checkpoint of each chain that verified and grew. A failure publishes
// audit.verification.failed.v1. It answers each chain's result.
func (s *Service) Run(ctx context.Context) ([]Result, error) {
	rows, err := s.pool.Query(ctx, `SELECT id::text FROM kernel.tenants
		UNION SELECT $1
		UNION SELECT chain FROM kernel.audit_checkpoints
		ORDER BY 1`, audit.PlatformChain)
	if err != nil {
		return nil, err
	}
	chains, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([]Result, 0, len(chains))
	for _, chain := range chains {
		r, err := s.Check(ctx, chain, true)
		if err != nil {
			return out, fmt.Errorf("checking audit chain %s: %w", chain, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func tenantOf(chain string) string {
	if chain == audit.PlatformChain {
		return ""
	}
	return chain
}

// Check verifies one chain against its last checkpoint; with sign, it
// also signs a checkpoint of a chain that verified and grew, and publishes
// a failure.
func (s *Service) Check(ctx context.Context, chain string, sign bool) (Result, error) {
	res := Result{Chain: chain, Valid: true}
	v, err := audit.Verify(ctx, s.pool, tenantOf(chain))
	if err != nil {
		return res, err
	}
	res.Entries = v.Entries
	if !v.Valid {
		res.Valid, res.BrokenAt, res.Reason = false, v.BrokenAt, v.Reason
	}
	last, err := s.lastCheckpoint(ctx, chain)
	if err != nil {
		return res, err
	}
	if last != nil {
		res.CheckpointSeq = last.Seq
		if reason := s.compare(ctx, chain, *last, v.Entries); reason != "" && res.Valid {
			res.Valid, res.Reason = false, reason
			if res.BrokenAt == 0 {
				res.BrokenAt = min(last.Seq, v.Entries+1)
			}
		}
	}
	if !sign {
		return res, nil
	}
	if !res.Valid {
		return res, s.failed(ctx, res)
	}
	if v.Entries == 0 || last != nil && last.Seq >= v.Entries {
		return res, nil // nothing new to sign
	}
	cp, err := s.sign(ctx, chain, v.Entries)
	if err != nil {
		return res, err
	}
	if cp != nil {
		res.Signed = cp.Seq
	}
	return res, nil
}

// compare says why the chain no longer holds checkpoint cp ("" if it
// does): the note does not verify or does not say what its row says, the
// chain is shorter, or its entry at the checkpoint's sequence changed.
func (s *Service) compare(ctx context.Context, chain string, cp Checkpoint, entries int64) string {
	verifiers, _, err := s.keyring.NoteVerifiers()
	if err != nil {
		return "the kernel's keys cannot verify checkpoints: " + err.Error()
	}
	n, err := note.Open([]byte(cp.Note), verifiers)
	if err != nil {
		return fmt.Sprintf("the checkpoint at seq %d does not verify: %v", cp.Seq, err)
	}
	c, seq, hash, _, err := parseText(n.Text)
	if err != nil || c != chain || seq != cp.Seq || hash != cp.Hash {
		return fmt.Sprintf("the checkpoint at seq %d does not say what its row says", cp.Seq)
	}
	if entries < cp.Seq {
		return fmt.Sprintf("truncated: the chain holds %d entries, but its checkpoint of %s holds %d", entries, cp.CreatedAt.UTC().Format(time.RFC3339), cp.Seq)
	}
	var h []byte
	err = s.pool.QueryRow(ctx, `SELECT hash FROM kernel.audit_log WHERE chain = $1 AND seq = $2`, chain, cp.Seq).Scan(&h)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Sprintf("the entry of the checkpoint at seq %d is gone", cp.Seq)
	}
	if err != nil {
		return "reading the chain: " + err.Error()
	}
	if base64.StdEncoding.EncodeToString(h) != cp.Hash {
		return fmt.Sprintf("rewritten: the entry at seq %d no longer has the hash its checkpoint of %s signed", cp.Seq, cp.CreatedAt.UTC().Format(time.RFC3339))
	}
	return ""
}

// failed publishes audit.verification.failed.v1.
func (s *Service) failed(ctx context.Context, r Result) error {
	data := map[string]any{"chain": r.Chain, "reason": r.Reason, "entries": r.Entries}
	if r.BrokenAt > 0 {
		data["broken_at_seq"] = r.BrokenAt
	}
	if r.CheckpointSeq > 0 {
		data["checkpoint_seq"] = r.CheckpointSeq
	}
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := outbox.Add(ctx, tx, outbox.Event{Type: outbox.AuditVerificationFailed, TenantID: tenantOf(r.Chain), Actor: "system:audit", Data: data})
		return err
	})
}

// text is a checkpoint's note text.
func text(chain string, seq int64, hash string, at time.Time) string {
	return fmt.Sprintf("%s\n%s\n%d\n%s\n%s\n", noteHeader, chain, seq, hash, at.UTC().Format(time.RFC3339))
}

// parseText reads a checkpoint's note text.
func parseText(t string) (chain string, seq int64, hash string, at time.Time, err error) {
	lines := strings.Split(strings.TrimSuffix(t, "\n"), "\n")
	if len(lines) != 5 || lines[0] != noteHeader {
		return "", 0, "", at, errors.New("not an audit checkpoint")
	}
	if seq, err = strconv.ParseInt(lines[2], 10, 64); err != nil {
		return "", 0, "", at, err
	}
	if at, err = time.Parse(time.RFC3339, lines[4]); err != nil {
		return "", 0, "", at, err
	}
	return lines[1], seq, lines[3], at, nil
}

// sign signs and stores a checkpoint of the chain's entry seq.
func (s *Service) sign(ctx context.Context, chain string, seq int64) (*Checkpoint, error) {
	signer, kid, vkey, err := s.keyring.NoteSigner()
	if err != nil {
		return nil, err
	}
	var h []byte
	if err := s.pool.QueryRow(ctx, `SELECT hash FROM kernel.audit_log WHERE chain = $1 AND seq = $2`, chain, seq).Scan(&h); err != nil {
		return nil, err
	}
	now := s.now().UTC().Truncate(time.Second)
	cp := Checkpoint{Chain: chain, TenantID: tenantOf(chain), Seq: seq, Hash: base64.StdEncoding.EncodeToString(h), KeyID: kid, VerifierKey: vkey, CreatedAt: now}
	msg, err := note.Sign(&note.Note{Text: text(chain, seq, cp.Hash, now)}, signer)
	if err != nil {
		return nil, err
	}
	cp.Note = string(msg)
	var tenant any
	if cp.TenantID != "" {
		tenant = cp.TenantID
	}
	stored := false
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO kernel.audit_checkpoints (chain, tenant_id, seq, hash, key_id, note, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chain, seq) DO NOTHING`, chain, tenant, seq, h, kid, cp.Note, now)
		if err != nil || tag.RowsAffected() == 0 {
			return err // another replica signed this head
		}
		stored = true
		_, err = outbox.Add(ctx, tx, outbox.Event{Type: outbox.AuditCheckpointSigned, TenantID: cp.TenantID, Actor: "system:audit",
			Data: map[string]any{"chain": chain, "seq": seq, "hash": cp.Hash, "signer": token.NoteKeyName(kid), "note": cp.Note}})
		return err
	})
	if err != nil || !stored {
		return nil, err
	}
	return &cp, nil
}

func (s *Service) lastCheckpoint(ctx context.Context, chain string) (*Checkpoint, error) {
	cps, err := s.List(ctx, chain, 0, 1)
	if err != nil || len(cps) == 0 {
		return nil, err
	}
	return &cps[0], nil
}

// List lists a chain's checkpoints, newest first, those before seq
// before (0: from the newest).
func (s *Service) List(ctx context.Context, chain string, before int64, limit int) ([]Checkpoint, error) {
	if before <= 0 {
		before = 1<<63 - 1
	}
	rows, err := s.pool.Query(ctx, `SELECT chain, coalesce(tenant_id::text, ''), seq, hash, key_id, note, created_at
		FROM kernel.audit_checkpoints WHERE chain = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3`, chain, before, limit)
	if err != nil {
		return nil, err
	}
	_, vkeys, err := s.keyring.NoteVerifiers()
	if err != nil {
		rows.Close()
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		var h []byte
		err := r.Scan(&c.Chain, &c.TenantID, &c.Seq, &h, &c.KeyID, &c.Note, &c.CreatedAt)
		c.Hash = base64.StdEncoding.EncodeToString(h)
		c.VerifierKey = vkeys[c.KeyID]
		return c, err
	})
}

// Chain is the chain of an institution (uuid.Nil: the platform's).
func Chain(tenant uuid.UUID) string {
	if tenant == uuid.Nil {
		return audit.PlatformChain
	}
	return tenant.String()
}

// VerifyNote checks a checkpoint note against a verifier key (as an
// auditor would, with the key made from the published JWKS) and answers
// what it says.
func VerifyNote(msg []byte, verifierKey string) (chain string, seq int64, hash string, at time.Time, err error) {
	v, err := note.NewVerifier(verifierKey)
	if err != nil {
		return "", 0, "", at, err
	}
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return "", 0, "", at, err
	}
	return parseText(n.Text)
}
