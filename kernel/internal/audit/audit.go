package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/database"
)

// PlatformChain is the chain of actions outside any tenant.
const PlatformChain = "platform"

// Entry is one audited action.
type Entry struct {
	ID        int64          `json:"id"`
	Seq       int64          `json:"seq"`
	TenantID  string         `json:"tenant_id,omitempty"`
	ActorType string         `json:"actor_type"` // user, apikey, operator, system, anonymous
	ActorID   string         `json:"actor_id"`
	Action    string         `json:"action"` // e.g. tenancy.member.roles_changed
	Target    string         `json:"target,omitempty"`
	Data      map[string]any `json:"data"`
	IP        string         `json:"ip,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	Hash      []byte         `json:"hash"`
}

// Append adds e to its tenant's chain inside tx. Appends to one chain are
// serialised by a transaction-scoped advisory lock.
func Append(ctx context.Context, tx pgx.Tx, e Entry) error {
	chain := chainOf(e.TenantID)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", chainLock(chain)); err != nil {
		return fmt.Errorf("locking audit chain: %w", err)
	}
	prev := make([]byte, sha256.Size)
	var seq int64
	err := tx.QueryRow(ctx, `SELECT seq, hash FROM kernel.audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, chain).Scan(&seq, &prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading audit chain head: %w", err)
	}
	e.Seq = seq + 1
	e.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	if e.Data == nil {
		e.Data = map[string]any{}
	}
	data, err := canonicalJSON(e.Data)
	if err != nil {
		return fmt.Errorf("encoding audit data: %w", err)
	}
	h := entryHash(prev, chain, e, data)
	var tenant any
	if e.TenantID != "" {
		tenant = e.TenantID
	}
	_, err = tx.Exec(ctx, `INSERT INTO kernel.audit_log
		(chain, seq, tenant_id, actor_type, actor_id, action, target, data, ip, request_id, created_at, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		chain, e.Seq, tenant, e.ActorType, e.ActorID, e.Action, e.Target, data, e.IP, e.RequestID, e.CreatedAt, prev, h)
	if err != nil {
		return fmt.Errorf("appending audit entry: %w", err)
	}
	return nil
}

// List returns entries of a tenant's chain (or the platform chain for ""),
// newest first, with IDs below before (0: from the newest).
func List(ctx context.Context, q database.Querier, tenantID string, before int64, limit int) ([]Entry, error) {
	rows, err := q.Query(ctx, `SELECT id, seq, coalesce(tenant_id::text, ''), actor_type, actor_id, action, target, data, ip, request_id, created_at, hash
		FROM kernel.audit_log WHERE chain = $1 AND ($2 = 0 OR id < $2) ORDER BY id DESC LIMIT $3`, chainOf(tenantID), before, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Entry, error) {
		var e Entry
		err := r.Scan(&e.ID, &e.Seq, &e.TenantID, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &e.Data, &e.IP, &e.RequestID, &e.CreatedAt, &e.Hash)
		return e, err
	})
}

// Result is the outcome of verifying a chain.
type Result struct {
	Chain    string `json:"chain"`
	Entries  int64  `json:"entries"`
	Valid    bool   `json:"valid"`
	BrokenAt int64  `json:"broken_at_seq,omitempty"` // first entry that does not verify
	Reason   string `json:"reason,omitempty"`
}

// Verify recomputes a tenant's chain (the platform chain for "") from the
// start and reports the first entry whose hash, link or sequence is wrong.
func Verify(ctx context.Context, q database.Querier, tenantID string) (Result, error) {
	chain := chainOf(tenantID)
	res := Result{Chain: chain, Valid: true}
	rows, err := q.Query(ctx, `SELECT seq, coalesce(tenant_id::text, ''), actor_type, actor_id, action, target, data::text, ip, request_id, created_at, prev_hash, hash
		FROM kernel.audit_log WHERE chain = $1 ORDER BY seq`, chain)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	var expect int64 = 1
	for rows.Next() {
		var e Entry
		var dataText string
		var prevHash []byte
		if err := rows.Scan(&e.Seq, &e.TenantID, &e.ActorType, &e.ActorID, &e.Action, &e.Target, &dataText, &e.IP, &e.RequestID, &e.CreatedAt, &prevHash, &e.Hash); err != nil {
			return res, err
		}
		res.Entries++
		if !res.Valid {
			continue
		}
		fail := func(reason string) { res.Valid, res.BrokenAt, res.Reason = false, e.Seq, reason }
		var data any
		dec := json.NewDecoder(bytes.NewReader([]byte(dataText)))
		dec.UseNumber()
		if err := dec.Decode(&data); err != nil {
			fail("data is not JSON")
			continue
		}
		canon, _ := json.Marshal(data)
		switch {
		case e.Seq != expect:
			fail(fmt.Sprintf("sequence gap: expected %d", expect))
		case !bytes.Equal(prevHash, prev):
			fail("link to the previous entry is broken")
		case !bytes.Equal(entryHash(prev, chain, e, canon), e.Hash):
			fail("entry content does not match its hash")
		}
		prev = e.Hash
		expect = e.Seq + 1
	}
	return res, rows.Err()
}

func entryHash(prev []byte, chain string, e Entry, data []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	// Length-prefixed fields: no two entries encode the same way.
	for _, f := range []string{chain, fmt.Sprint(e.Seq), e.TenantID, e.ActorType, e.ActorID, e.Action, e.Target, string(data), e.IP, e.RequestID, e.CreatedAt.UTC().Format(time.RFC3339Nano)} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return h.Sum(nil)
}

// canonicalJSON encodes v with sorted keys, as Verify re-encodes the stored jsonb.
func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var x any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&x); err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

func chainOf(tenantID string) string {
	if tenantID == "" {
		return PlatformChain
	}
	return tenantID
}

func chainLock(chain string) int64 {
	h := fnv.New64a()
	h.Write([]byte("audit:" + chain))
	return int64(h.Sum64())
}
