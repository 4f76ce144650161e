package privacy

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/tenancy"
	"github.com/edulure/edulure/sdk"
)

// person reads whom an erasure is about, as the kernel knows them now (an
// anonymised account has no address or name left).
func person(ctx context.Context, q database.Querier, userID uuid.UUID) (audit.Person, bool, error) {
	p := audit.Person{UserID: userID.String()}
	var operator bool
	err := q.QueryRow(ctx, `SELECT email, display_name, is_operator FROM kernel.users WHERE id = $1`, userID).Scan(&p.Email, &p.Name, &operator)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, false, sdk.Errorf(sdk.ErrNotFound, "no such user")
	}
	return p, operator, err
}

// eraseAccess is an erasure's first step: the person stops being a member
// of the institution; their sessions there, the API keys they made there
// and the invitations to their address there are revoked. It refuses to
// take away the institution's last admin.
func (s *Service) eraseAccess(ctx context.Context, r *Request) ([]Count, error) {
	var counts []Count
	err := database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		counts = nil
		p, _, err := person(ctx, tx, *r.UserID)
		if err != nil {
			return err
		}
		var roles []string
		err = tx.QueryRow(ctx, `SELECT roles FROM kernel.memberships WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE`, r.TenantID, r.UserID).Scan(&roles)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
		case err != nil:
			return err
		default:
			if slices.Contains(roles, "admin") {
				n, err := tenancy.CountAdmins(ctx, tx, r.TenantID, *r.UserID)
				if err != nil {
					return err
				}
				if n == 0 {
					return errors.New("the person is the institution's last admin: make someone else admin, then resume the erasure")
				}
			}
			if err := tenancy.RemoveMember(ctx, tx, r.TenantID, *r.UserID); err != nil {
				return err
			}
			counts = append(counts, Count{Table: "memberships", Deleted: 1})
		}
		revoke := []struct {
			table, sql string
			args       []any
		}{
			{"sessions", `UPDATE kernel.sessions SET revoked_at = now(), revoked_reason = 'erased' WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL`,
				[]any{r.TenantID, r.UserID}},
			{"api_keys", `UPDATE kernel.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND created_by = $2 AND revoked_at IS NULL`,
				[]any{r.TenantID, r.UserID}},
			{"invitations", `UPDATE kernel.invitations SET revoked_at = now() WHERE tenant_id = $1 AND lower(email) = lower($2) AND $2 <> ''
				AND accepted_at IS NULL AND revoked_at IS NULL`, []any{r.TenantID, p.Email}},
		}
		for _, rv := range revoke {
			tag, err := tx.Exec(ctx, rv.sql, rv.args...)
			if err != nil {
				return fmt.Errorf("revoking %s: %w", rv.table, err)
			}
			if n := tag.RowsAffected(); n > 0 {
				counts = append(counts, Count{Table: rv.table, Revoked: uint64(n)})
			}
		}
		return nil
	})
	return counts, err
}

// erasePersonKernel is an erasure's last step: the kernel's own records of
// the person in the institution go (sessions, invitations, their exports),
// or lose them where they must stay (API keys and settings they made, the
// requests they asked for); every audit value, event, job run and stored
// answer of the institution that mentions them is erased or rewritten
// (their ID becomes the pseudonym, their address and name Erased). When
// the institution was their last, the account is anonymised: a tombstone
// without address, name, password or second factor, and the platform's
// records of them are erased the same way.
func (s *Service) erasePersonKernel(ctx context.Context, r *Request) ([]Count, error) {
	p, operator, err := person(ctx, s.pool, *r.UserID)
	if err != nil {
		return nil, err
	}
	// Export bundles first: they hold the person's data; their rows go in
	// the transaction below.
	if err := s.deleteBundles(ctx, `SELECT object_key FROM kernel.data_exports WHERE user_id = $1 AND tenant_id = $2 AND object_key IS NOT NULL`, r.UserID, r.TenantID); err != nil {
		return nil, err
	}
	withdrawn, err := s.withdrawExports(ctx, r.TenantID)
	if err != nil {
		return nil, err
	}
	var others int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM kernel.memberships WHERE user_id = $1`, r.UserID).Scan(&others); err != nil {
		return nil, err
	}
	anonymise := r.wasMember && others == 0 && !operator
	if anonymise {
		if err := s.deleteBundles(ctx, `SELECT object_key FROM kernel.data_exports WHERE user_id = $1 AND object_key IS NOT NULL`, r.UserID); err != nil {
			return nil, err
		}
	}
	switch {
	case anonymise:
		r.Outcome["account"] = "anonymised"
	case operator:
		r.Outcome["account"] = "kept: a platform operator's account is not anonymised"
	case others > 0:
		r.Outcome["account"] = fmt.Sprintf("kept: a member of %d other institution(s)", others)
	default:
		r.Outcome["account"] = "kept: not a member when the erasure was asked"
	}
	sc := newScrubber([]audit.Person{p}, []string{r.pseudonym.String()})
	actor := "user:" + r.UserID.String()
	var counts []Count
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		counts = nil
		if withdrawn > 0 {
			counts = append(counts, Count{Table: "data_exports", Class: "withdrawn", Objects: uint64(withdrawn)})
		}
		add := func(table string, c Count) {
			if c.Deleted+c.Anonymised+c.References+c.Objects+c.Revoked > 0 {
				c.Table = table
				counts = append(counts, c)
			}
		}
		exec := func(table, sql string, args ...any) (int64, error) {
			tag, err := tx.Exec(ctx, sql, args...)
			if err != nil {
				return 0, fmt.Errorf("erasing from %s: %w", table, err)
			}
			return tag.RowsAffected(), nil
		}
		type stmt struct {
			table, sql string
			args       []any
			ref        bool // the rows stay, without the person
		}
		run := func(stmts []stmt) error {
			for _, st := range stmts {
				n, err := exec(st.table, st.sql, st.args...)
				if err != nil {
					return err
				}
				if st.ref {
					add(st.table, Count{References: uint64(n)})
				} else {
					add(st.table, Count{Deleted: uint64(n)})
				}
			}
			return nil
		}
		tu := []any{r.TenantID, r.UserID}
		ta := []any{r.TenantID, actor}
		err := run([]stmt{
			{"sessions", `DELETE FROM kernel.sessions WHERE tenant_id = $1 AND user_id = $2`, tu, false},
			{"mfa_challenges", `DELETE FROM kernel.mfa_challenges WHERE tenant_id = $1 AND user_id = $2`, tu, false},
			{"invitations", `DELETE FROM kernel.invitations WHERE tenant_id = $1 AND (accepted_by = $2 OR (lower(email) = lower($3) AND $3 <> ''))`,
				[]any{r.TenantID, r.UserID, p.Email}, false},
			{"invitations", `UPDATE kernel.invitations SET invited_by = NULL WHERE tenant_id = $1 AND invited_by = $2`, tu, true},
			{"api_keys", `UPDATE kernel.api_keys SET created_by = NULL, revoked_at = coalesce(revoked_at, now()) WHERE tenant_id = $1 AND created_by = $2`, tu, true},
			{"tenant_plugins", `UPDATE kernel.tenant_plugins SET updated_by = NULL WHERE tenant_id = $1 AND updated_by = $2`, tu, true},
			{"data_exports", `DELETE FROM kernel.data_exports WHERE tenant_id = $1 AND user_id = $2`, tu, false},
			{"data_exports", `UPDATE kernel.data_exports SET requested_by = 'erased' WHERE tenant_id = $1 AND requested_by = $2`, ta, true},
			{"privacy_requests", `UPDATE kernel.privacy_requests SET requested_by = 'erased' WHERE tenant_id = $1 AND requested_by = $2`, ta, true},
			{"privacy_history", `UPDATE kernel.privacy_history h SET actor = 'erased' FROM kernel.privacy_requests r
				WHERE h.request_id = r.id AND r.tenant_id = $1 AND h.actor = $2`, ta, true},
		})
		if err != nil {
			return err
		}
		n, err := s.eraseStoredAnswers(ctx, tx, r.TenantID, actor, sc)
		if err != nil {
			return fmt.Errorf("erasing from idempotency_keys: %w", err)
		}
		add("idempotency_keys", Count{Deleted: uint64(n)})
		n, err = audit.Redact(ctx, tx, audit.Chain(r.TenantID.String()), []audit.Person{p}, "erasure:"+r.ID.String())
		if err != nil {
			return err
		}
		add("audit_personal", Count{Anonymised: uint64(n)})
		if err := s.scrubRecords(ctx, tx, sc, "tenant_id = $3", r.TenantID, add); err != nil {
			return err
		}
		if !anonymise {
			return nil
		}
		u := []any{r.UserID}
		err = run([]stmt{
			{"sessions", `DELETE FROM kernel.sessions WHERE user_id = $1`, u, false},
			{"mfa_recovery_codes", `DELETE FROM kernel.mfa_recovery_codes WHERE user_id = $1`, u, false},
			{"mfa_challenges", `DELETE FROM kernel.mfa_challenges WHERE user_id = $1`, u, false},
			{"password_resets", `DELETE FROM kernel.password_resets WHERE user_id = $1`, u, false},
			{"email_verifications", `DELETE FROM kernel.email_verifications WHERE user_id = $1`, u, false},
			{"data_exports", `DELETE FROM kernel.data_exports WHERE user_id = $1`, u, false},
			{"idempotency_keys", `DELETE FROM kernel.idempotency_keys WHERE starts_with(scope, $1 || ':')`, []any{actor}, false},
		})
		if err != nil {
			return err
		}
		if n, err = anonymiseAccounts(ctx, tx, []uuid.UUID{*r.UserID}); err != nil {
			return err
		}
		add("users", Count{Anonymised: uint64(n)})
		if n, err = audit.Redact(ctx, tx, audit.PlatformChain, []audit.Person{p}, "erasure:"+r.ID.String()); err != nil {
			return err
		}
		add("audit_personal", Count{Anonymised: uint64(n)})
		return s.scrubRecords(ctx, tx, sc, "tenant_id IS NULL AND $3::uuid IS NULL", nil, add)
	})
	return counts, err
}

// anonymiseAccounts makes accounts tombstones: their IDs stay valid for
// the records that name them, and they hold nothing of the people.
func anonymiseAccounts(ctx context.Context, tx pgx.Tx, userIDs []uuid.UUID) (int64, error) {
	tag, err := tx.Exec(ctx, `UPDATE kernel.users SET email = '', display_name = '', password_hash = '', is_operator = false,
			mfa_secret = NULL, mfa_enabled_at = NULL, mfa_last_step = 0, mfa_failures = 0, mfa_locked_until = NULL,
			failed_logins = 0, locked_until = NULL, email_verified_at = NULL, erased_at = now(), updated_at = now()
		WHERE id = ANY($1) AND (erased_at IS NULL OR email <> '' OR display_name <> '')`, userIDs)
	if err != nil {
		return 0, fmt.Errorf("anonymising the account: %w", err)
	}
	return tag.RowsAffected(), nil
}

// scrubRecords rewrites the kernel's records of events, deliveries and job
// runs that mention the people, among those where selects ($3: tenant).
func (s *Service) scrubRecords(ctx context.Context, tx pgx.Tx, sc *scrubber, where string, tenant any, add func(string, Count)) error {
	targets := []struct {
		table string
		keys  []string
		cols  []column
		where string
	}{
		{"kernel.events", []string{"seq"}, []column{{"actor", false}, {"data", true}}, where},
		{"kernel.outbox", []string{"id"}, []column{{"actor", false}, {"data", true}}, where},
		{"kernel.deliveries", []string{"id"}, []column{{"actor", false}, {"data", true}, {"last_error", false}}, where},
		{"kernel.job_runs", []string{"id"}, []column{{"requested_by", false}, {"args", true}, {"last_error", false}, {"output", false}}, where},
		{"kernel.job_attempts", []string{"run_id", "attempt"}, []column{{"error", false}},
			"run_id IN (SELECT id FROM kernel.job_runs WHERE " + where + ")"},
		{"kernel.data_exports", []string{"id"}, []column{{"last_error", false}}, where},
		{"kernel.privacy_steps", []string{"request_id", "step"}, []column{{"last_error", false}},
			"request_id IN (SELECT id FROM kernel.privacy_requests WHERE " + where + ")"},
		{"kernel.privacy_history", []string{"id"}, []column{{"detail", false}},
			"request_id IN (SELECT id FROM kernel.privacy_requests WHERE " + where + ")"},
	}
	for _, t := range targets {
		n, err := sc.scrubColumns(ctx, tx, t.table, t.keys, t.cols, t.where, tenant)
		if err != nil {
			return err
		}
		add(t.table[len("kernel."):], Count{Anonymised: uint64(n)})
	}
	return nil
}

// deleteBundles removes the export bundles the query lists from the
// object storage.
func (s *Service) deleteBundles(ctx context.Context, query string, args ...any) error {
	if s.store == nil {
		return nil
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.deleteObject(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// eraseStoredAnswers deletes the answers kept for Idempotency-Key retries in
// an institution that are the person's own (their scope) or that mention
// them (an admin's invitation of them, say). The answers are sealed, so
// each of the institution's is opened here and searched like the kernel's
// other records; they are kept hours, so there are few.
func (s *Service) eraseStoredAnswers(ctx context.Context, tx pgx.Tx, tenant uuid.UUID, actor string, sc *scrubber) (int64, error) {
	suffix := ":" + tenant.String()
	rows, err := tx.Query(ctx, `SELECT scope, key, body FROM kernel.idempotency_keys WHERE scope LIKE '%' || $1 FOR UPDATE`, suffix)
	if err != nil {
		return 0, err
	}
	var scopes, keys []string // of the answers to delete
	doom := func(scope, key string) { scopes, keys = append(scopes, scope), append(keys, key) }
	for rows.Next() {
		var scope, key string
		var body []byte
		if err := rows.Scan(&scope, &key, &body); err != nil {
			rows.Close()
			return 0, err
		}
		if scope == actor+suffix {
			doom(scope, key)
			continue
		}
		if body == nil {
			continue
		}
		if s.opts.Sealer == nil {
			rows.Close()
			return 0, errors.New("no sealer to open the stored answers with")
		}
		plain, err := s.opts.Sealer.OpenStoredAnswer(scope, key, body)
		if err != nil {
			// Not openable under this key: not readable by anyone, the
			// safe side is to delete it.
			doom(scope, key)
			continue
		}
		if _, mentioned := sc.text(string(plain)); mentioned {
			doom(scope, key)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(scopes) == 0 {
		return 0, err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM kernel.idempotency_keys k USING unnest($1::text[], $2::text[]) AS d(scope, key)
		WHERE k.scope = d.scope AND k.key = d.key`, scopes, keys)
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
