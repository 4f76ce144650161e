package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
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
	ActorType string         `json:"actor_type"` // user, apikey, operator, system, anonymous, link
	ActorID   string         `json:"actor_id"`
	Action    string         `json:"action"` // e.g. tenancy.member.roles_changed
	Target    string         `json:"target,omitempty"`
	Data      map[string]any `json:"data"`
	IP        string         `json:"ip,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	CreatedAt time.Time      `json:"created_at"`
	Hash      []byte         `json:"hash"`
	// Erased lists the personal values a person's erasure removed from the
	// entry: actor_id, target, data, ip.
	Erased []string `json:"erased,omitempty"`
}

// The personal fields of an entry, in the order of its commitments.
var personalFields = []string{"actor_id", "target", "data", "ip"}

// Entry formats: 1 hashed the personal values themselves (before migration
// 0014); 2 hashes a salted commitment to each.
const (
	formatV1 = 1
	formatV2 = 2
)

// Append adds e to its tenant's chain inside tx. Appends to one chain are
// serialised by a transaction-scoped advisory lock.
func Append(ctx context.Context, tx pgx.Tx, e Entry) error {
	chain := chainOf(e.TenantID)
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", chainLock(chain)); err != nil {
		return fmt.Errorf("locking audit chain: %w", err)
	}
	prev := make([]byte, sha256.Size)
	var seq int64
	var headFormat int16
	err := tx.QueryRow(ctx, `SELECT seq, hash, format FROM kernel.audit_log WHERE chain = $1 ORDER BY seq DESC LIMIT 1`, chain).Scan(&seq, &prev, &headFormat)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading audit chain head: %w", err)
	}
	var anchor []byte
	if headFormat == formatV1 {
		// The chain's first entry since format 2: anchor what stays of the
		// format-1 entries once their values are erased.
		if anchor, err = v1Anchor(ctx, tx, chain); err != nil {
			return err
		}
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
	values := []string{e.ActorID, e.Target, string(data), e.IP}
	if string(data) == "{}" {
		values[2] = ""
	}
	commitments := make([][]byte, len(values))
	salts := make([][]byte, len(values))
	for i, v := range values {
		if v == "" {
			commitments[i] = []byte{}
			continue
		}
		salts[i] = make([]byte, 16)
		if _, err := rand.Read(salts[i]); err != nil {
			return err
		}
		commitments[i] = commit(salts[i], personalFields[i], v)
	}
	h := entryHashV2(prev, chain, e, commitments, anchor)
	var tenant any
	if e.TenantID != "" {
		tenant = e.TenantID
	}
	var id int64
	err = tx.QueryRow(ctx, `INSERT INTO kernel.audit_log
		(chain, seq, tenant_id, actor_type, action, request_id, created_at, prev_hash, hash, format, commitments, v1_anchor)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 2, $10, $11) RETURNING id`,
		chain, e.Seq, tenant, e.ActorType, e.Action, e.RequestID, e.CreatedAt, prev, h, commitments, anchor).Scan(&id)
	if err != nil {
		return fmt.Errorf("appending audit entry: %w", err)
	}
	var jsonData any
	if values[2] != "" {
		jsonData = data
	}
	_, err = tx.Exec(ctx, `INSERT INTO kernel.audit_personal
		(entry_id, chain, actor_id, actor_salt, target, target_salt, data, data_salt, ip, ip_salt)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		id, chain, nullable(values[0]), salts[0], nullable(values[1]), salts[1], jsonData, salts[2], nullable(values[3]), salts[3])
	if err != nil {
		return fmt.Errorf("appending audit entry: %w", err)
	}
	return nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// commit is the commitment to one personal value: SHA-256 of a random salt,
// the field's name and the value. Without the salt (erased with the value)
// the value cannot be confirmed by trying guesses.
func commit(salt []byte, field, value string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(field))
	h.Write([]byte{0})
	h.Write([]byte(value))
	return h.Sum(nil)
}

const listColumns = `l.id, l.seq, coalesce(l.tenant_id::text, ''), l.actor_type, l.action, l.request_id, l.created_at, l.hash, l.format,
	p.actor_id, p.target, p.data, p.ip, coalesce(l.commitments, '{}'), p.entry_id IS NOT NULL`

// List returns entries of a tenant's chain (or the platform chain for ""),
// newest first, with IDs below before (0: from the newest).
func List(ctx context.Context, q database.Querier, tenantID string, before int64, limit int) ([]Entry, error) {
	return ListFiltered(ctx, q, tenantID, Filter{Before: before, Limit: limit})
}

// Filter selects entries of a chain. Empty fields select everything.
type Filter struct {
	// Action is an action, or with a final dot a family of them
	// ("tenancy.member." selects tenancy.member.removed and its siblings).
	Action    string
	ActorType string
	ActorID   string
	Target    string
	From, To  time.Time // created at or after From, before To
	Before    int64     // IDs below it (0: from the newest)
	Limit     int
}

// ListFiltered returns the entries of a tenant's chain (or the platform
// chain for "") that f selects, newest first.
func ListFiltered(ctx context.Context, q database.Querier, tenantID string, f Filter) ([]Entry, error) {
	var from, to *time.Time
	if !f.From.IsZero() {
		from = &f.From
	}
	if !f.To.IsZero() {
		to = &f.To
	}
	rows, err := q.Query(ctx, `SELECT `+listColumns+`
		FROM kernel.audit_log l LEFT JOIN kernel.audit_personal p ON p.entry_id = l.id
		WHERE l.chain = $1 AND ($2 = 0 OR l.id < $2)
			AND ($4 = '' OR l.action = $4 OR right($4, 1) = '.' AND starts_with(l.action, $4))
			AND ($5 = '' OR l.actor_type = $5) AND ($6 = '' OR p.actor_id = $6) AND ($7 = '' OR p.target = $7)
			AND ($8::timestamptz IS NULL OR l.created_at >= $8) AND ($9::timestamptz IS NULL OR l.created_at < $9)
		ORDER BY l.id DESC LIMIT $3`, chainOf(tenantID), f.Before, f.Limit, f.Action, f.ActorType, f.ActorID, f.Target, from, to)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanEntry)
}

func scanEntry(r pgx.CollectableRow) (Entry, error) {
	var e Entry
	var format int16
	var actor, target, ip *string
	var data map[string]any
	var commitments [][]byte
	var hasPersonal bool
	err := r.Scan(&e.ID, &e.Seq, &e.TenantID, &e.ActorType, &e.Action, &e.RequestID, &e.CreatedAt, &e.Hash, &format,
		&actor, &target, &data, &ip, &commitments, &hasPersonal)
	if err != nil {
		return e, err
	}
	e.Data = map[string]any{}
	if data != nil {
		e.Data = data
	}
	for i, v := range []*string{actor, target, nil, ip} {
		present := v != nil
		if i == 2 {
			present = data != nil
		}
		if present {
			continue
		}
		// Absent: erased when there was a value, that is when a format-2
		// commitment is not empty, or a format-1 value was taken out.
		if format == formatV2 && i < len(commitments) && len(commitments[i]) > 0 ||
			format == formatV1 && hasPersonal {
			e.Erased = append(e.Erased, personalFields[i])
		}
	}
	if actor != nil {
		e.ActorID = *actor
	}
	if target != nil {
		e.Target = *target
	}
	if ip != nil {
		e.IP = *ip
	}
	return e, nil
}

// Result is the outcome of verifying a chain.
type Result struct {
	Chain    string `json:"chain"`
	Entries  int64  `json:"entries"`
	Valid    bool   `json:"valid"`
	BrokenAt int64  `json:"broken_at_seq,omitempty"` // first entry that does not verify
	Reason   string `json:"reason,omitempty"`
	// Erased counts the entries some of whose personal values an erasure
	// removed: they verify against their commitments (and, for entries
	// from before format 2, against the chain's anchor).
	Erased int64 `json:"erased,omitempty"`
}

// Verify recomputes a tenant's chain (the platform chain for "") from the
// start and reports the first entry whose hash, link, sequence or personal
// values are wrong.
func Verify(ctx context.Context, q database.Querier, tenantID string) (Result, error) {
	chain := chainOf(tenantID)
	res := Result{Chain: chain, Valid: true}
	rows, err := q.Query(ctx, `SELECT l.seq, l.format, coalesce(l.tenant_id::text, ''), l.actor_type, l.action, l.request_id, l.created_at,
			l.prev_hash, l.hash, coalesce(l.commitments, '{}'), l.v1_anchor, p.entry_id IS NOT NULL,
			p.actor_id, p.actor_salt, p.target, p.target_salt, p.data::text, p.data_salt, p.ip, p.ip_salt
		FROM kernel.audit_log l LEFT JOIN kernel.audit_personal p ON p.entry_id = l.id
		WHERE l.chain = $1 ORDER BY l.seq`, chain)
	if err != nil {
		return res, err
	}
	defer rows.Close()
	prev := make([]byte, sha256.Size)
	var expect int64 = 1
	anchor := newAnchor()
	v1Seen, v1Erased, anchored := false, false, false
	for rows.Next() {
		var (
			e           Entry
			format      int16
			prevHash    []byte
			commitments [][]byte
			v1anchor    []byte
			hasPersonal bool
			values      [4]*string
			salts       [4][]byte
		)
		if err := rows.Scan(&e.Seq, &format, &e.TenantID, &e.ActorType, &e.Action, &e.RequestID, &e.CreatedAt, &prevHash, &e.Hash,
			&commitments, &v1anchor, &hasPersonal,
			&values[0], &salts[0], &values[1], &salts[1], &values[2], &salts[2], &values[3], &salts[3]); err != nil {
			return res, err
		}
		res.Entries++
		if !res.Valid {
			continue
		}
		fail := func(reason string) { res.Valid, res.BrokenAt, res.Reason = false, e.Seq, reason }
		switch {
		case e.Seq != expect:
			fail(fmt.Sprintf("sequence gap: expected %d", expect))
		case !bytes.Equal(prevHash, prev):
			fail("link to the previous entry is broken")
		case format == formatV1:
			v1Seen = true
			if anchored {
				fail("a format-1 entry after format-2 entries")
				break
			}
			anchor.add(chain, e, prevHash)
			if !hasPersonal || values[0] == nil || values[1] == nil || values[2] == nil || values[3] == nil {
				// Erased: what stays is covered by the anchor of the chain's
				// first format-2 entry.
				v1Erased = true
				res.Erased++
				break
			}
			data, err := canonicalText(*values[2])
			if err != nil {
				fail("data is not JSON")
				break
			}
			e.ActorID, e.Target, e.IP = *values[0], *values[1], *values[3]
			if !bytes.Equal(entryHashV1(prev, chain, e, data), e.Hash) {
				fail("entry content does not match its hash")
			}
		default:
			var want []byte
			if v1Seen && !anchored {
				want = anchor.sum()
			}
			anchored = true
			if !bytes.Equal(v1anchor, want) {
				fail("the anchor of the entries before format 2 does not match them")
				break
			}
			if len(commitments) != len(personalFields) {
				fail("entry content does not match its hash")
				break
			}
			if !bytes.Equal(entryHashV2(prev, chain, e, commitments, v1anchor), e.Hash) {
				fail("entry content does not match its hash")
				break
			}
			erased := false
			for i, field := range personalFields {
				c, v := commitments[i], values[i]
				switch {
				case v == nil && len(c) > 0:
					erased = true
				case v == nil:
				case len(c) == 0 || len(salts[i]) == 0:
					fail(fmt.Sprintf("personal value %s has no commitment", field))
				default:
					value := *v
					if i == 2 {
						canon, err := canonicalText(value)
						if err != nil {
							fail("data is not JSON")
							break
						}
						value = string(canon)
					}
					if !bytes.Equal(commit(salts[i], field, value), c) {
						fail(fmt.Sprintf("personal value %s does not match its commitment", field))
					}
				}
			}
			if erased {
				res.Erased++
			}
		}
		prev = e.Hash
		expect = e.Seq + 1
	}
	if err := rows.Err(); err != nil {
		return res, err
	}
	if res.Valid && v1Erased && !anchored {
		res.Valid, res.Reason = false, "entries from before format 2 were erased, but no later entry anchors them"
	}
	return res, nil
}

// entryHashV1 is the hash of a format-1 entry: its values themselves.
func entryHashV1(prev []byte, chain string, e Entry, data []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	// Length-prefixed fields: no two entries encode the same way.
	for _, f := range []string{chain, fmt.Sprint(e.Seq), e.TenantID, e.ActorType, e.ActorID, e.Action, e.Target, string(data), e.IP, e.RequestID, e.CreatedAt.UTC().Format(time.RFC3339Nano)} {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return h.Sum(nil)
}

// entryHashV2 is the hash of a format-2 entry: its non-personal content,
// the commitments to its personal values, and the anchor of the format-1
// entries before it (on the chain's first format-2 entry only).
func entryHashV2(prev []byte, chain string, e Entry, commitments [][]byte, anchor []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	fields := []string{"v2", chain, fmt.Sprint(e.Seq), e.TenantID, e.ActorType, e.Action, e.RequestID, e.CreatedAt.UTC().Format(time.RFC3339Nano)}
	for _, c := range commitments {
		fields = append(fields, hex.EncodeToString(c))
	}
	fields = append(fields, hex.EncodeToString(anchor))
	for _, f := range fields {
		fmt.Fprintf(h, "%d:%s;", len(f), f)
	}
	return h.Sum(nil)
}

// anchorAcc accumulates the non-personal part of format-1 entries:
// sequence, tenant, actor type, action, request, time and both hashes.
type anchorAcc struct{ h hash.Hash }

func newAnchor() *anchorAcc { return &anchorAcc{h: sha256.New()} }

func (a *anchorAcc) add(chain string, e Entry, prevHash []byte) {
	s := sha256.New()
	for _, f := range []string{chain, fmt.Sprint(e.Seq), e.TenantID, e.ActorType, e.Action, e.RequestID, e.CreatedAt.UTC().Format(time.RFC3339Nano), hex.EncodeToString(prevHash), hex.EncodeToString(e.Hash)} {
		fmt.Fprintf(s, "%d:%s;", len(f), f)
	}
	a.h.Write(s.Sum(nil))
}

func (a *anchorAcc) sum() []byte { return a.h.Sum(nil) }

// v1Anchor computes the anchor of a chain's format-1 entries.
func v1Anchor(ctx context.Context, tx pgx.Tx, chain string) ([]byte, error) {
	rows, err := tx.Query(ctx, `SELECT seq, coalesce(tenant_id::text, ''), actor_type, action, request_id, created_at, prev_hash, hash
		FROM kernel.audit_log WHERE chain = $1 AND format = 1 ORDER BY seq`, chain)
	if err != nil {
		return nil, fmt.Errorf("anchoring audit chain: %w", err)
	}
	defer rows.Close()
	a := newAnchor()
	for rows.Next() {
		var e Entry
		var prevHash []byte
		if err := rows.Scan(&e.Seq, &e.TenantID, &e.ActorType, &e.Action, &e.RequestID, &e.CreatedAt, &prevHash, &e.Hash); err != nil {
			return nil, err
		}
		a.add(chain, e, prevHash)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("anchoring audit chain: %w", err)
	}
	return a.sum(), nil
}

// canonicalJSON encodes v with sorted keys, as Verify re-encodes the stored jsonb.
func canonicalJSON(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return canonicalText(string(b))
}

func canonicalText(s string) ([]byte, error) {
	var x any
	dec := json.NewDecoder(bytes.NewReader([]byte(s)))
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

// Chain names a tenant's chain (the platform chain for "").
func Chain(tenantID string) string { return chainOf(tenantID) }

func chainLock(chain string) int64 {
	h := fnv.New64a()
	h.Write([]byte("audit:" + chain))
	return int64(h.Sum64())
}
