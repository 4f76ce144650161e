package audit

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// mentions is a SQL condition: the text expr mentions them (Mentions,
// with its substrings as $3 and words as $4).
func mentions(expr string) string { return Condition(expr, 3, 4) }

// Redact erases from chain's entries every personal value that mentions
// one of people (Mentions: holds their user ID or email address, or their
// name as words), and the caller's address of the entries they made (and
// of those made through a signed link or anonymously about them). The entries themselves stay and
// still verify: their hashes cover commitments, not values. When it changed
// something it appends an entry saying how many entries it changed, with
// ref (an erasure's "erasure:<id>"), in the same transaction: that entry
// also anchors the chain's entries from before format 2. It returns the
// number of entries changed; run again, it changes none.
func Redact(ctx context.Context, tx pgx.Tx, chain string, people []Person, ref string) (int64, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", chainLock(chain)); err != nil {
		return 0, fmt.Errorf("locking audit chain: %w", err)
	}
	var ids []string
	for _, p := range people {
		if p.UserID != "" {
			ids = append(ids, p.UserID)
		}
	}
	m := MentionsOf(people...)
	if m.Empty() {
		return 0, nil
	}
	tag, err := tx.Exec(ctx, `
		WITH m AS (
			SELECT p.entry_id,
				(p.actor_id = ANY($2::text[]) OR `+mentions("p.actor_id")+`) AS a,
				`+mentions("p.target")+` AS t,
				`+mentions("p.data::text")+` AS d,
				`+mentions("p.ip")+` AS i,
				l.actor_type NOT IN ('user', 'apikey', 'operator', 'system') AS unattributed
			FROM kernel.audit_personal p JOIN kernel.audit_log l ON l.id = p.entry_id
			WHERE p.chain = $1
		)
		UPDATE kernel.audit_personal p SET
			actor_id = CASE WHEN m.a THEN NULL ELSE p.actor_id END,
			actor_salt = CASE WHEN m.a THEN NULL ELSE p.actor_salt END,
			target = CASE WHEN m.t THEN NULL ELSE p.target END,
			target_salt = CASE WHEN m.t THEN NULL ELSE p.target_salt END,
			data = CASE WHEN m.d THEN NULL ELSE p.data END,
			data_salt = CASE WHEN m.d THEN NULL ELSE p.data_salt END,
			ip = CASE WHEN m.i OR m.a OR (m.unattributed AND (m.t OR m.d)) THEN NULL ELSE p.ip END,
			ip_salt = CASE WHEN m.i OR m.a OR (m.unattributed AND (m.t OR m.d)) THEN NULL ELSE p.ip_salt END,
			erased_at = now()
		FROM m WHERE p.entry_id = m.entry_id AND (m.a OR m.t OR m.d OR m.i)`, chain, ids, m.Substrings, m.Words)
	if err != nil {
		return 0, fmt.Errorf("erasing personal values from audit chain %s: %w", chain, err)
	}
	n := tag.RowsAffected()
	if n > 0 {
		if err := appendErased(ctx, tx, chain, n, ref); err != nil {
			return n, err
		}
	}
	return n, nil
}

// EraseChain erases every personal value of chain (an institution that
// leaves); the entries stay and still verify. It appends an entry saying
// so, with ref, and returns the number of entries changed.
func EraseChain(ctx context.Context, tx pgx.Tx, chain, ref string) (int64, error) {
	if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", chainLock(chain)); err != nil {
		return 0, fmt.Errorf("locking audit chain: %w", err)
	}
	tag, err := tx.Exec(ctx, `UPDATE kernel.audit_personal SET actor_id = NULL, actor_salt = NULL, target = NULL, target_salt = NULL,
			data = NULL, data_salt = NULL, ip = NULL, ip_salt = NULL, erased_at = now()
		WHERE chain = $1 AND num_nonnulls(actor_id, target, data, ip) > 0`, chain)
	if err != nil {
		return 0, fmt.Errorf("erasing audit chain %s: %w", chain, err)
	}
	n := tag.RowsAffected()
	if n > 0 {
		if err := appendErased(ctx, tx, chain, n, ref); err != nil {
			return n, err
		}
	}
	return n, nil
}

func appendErased(ctx context.Context, tx pgx.Tx, chain string, n int64, ref string) error {
	e := Entry{ActorType: "system", ActorID: "privacy", Action: "audit.personal_values.erased", Target: ref, Data: map[string]any{"entries": n}}
	if chain != PlatformChain {
		e.TenantID = chain
	}
	return Append(ctx, tx, e)
}

// Mentioning returns the entries of chain with a personal value that
// mentions p, oldest first, for the person's export.
func Mentioning(ctx context.Context, tx pgx.Tx, chain string, p Person) ([]Entry, error) {
	m := MentionsOf(p)
	if m.Empty() {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `SELECT `+listColumns+`
		FROM kernel.audit_log l JOIN kernel.audit_personal p ON p.entry_id = l.id
		WHERE p.chain = $1 AND (p.actor_id = $2 OR `+mentions("p.actor_id")+` OR `+mentions("p.target")+` OR `+mentions("p.data::text")+`)
		ORDER BY l.seq`, chain, p.UserID, m.Substrings, m.Words)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanEntry)
}
