package privacy

import (
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
)

// kernelExport is one file of the kernel's part of a person's export: the
// query of their rows (with $1 the institution, $2 the person, $3
// "user:<id>", $4 their address) as JSON objects.
type kernelExport struct {
	class, table string
	file         string // "" : <class>.jsonl
	query        string
}

// kernelExports are the kernel's files of a person's export: what it holds
// about them in the institution (and, while they are its member, of their
// account), without others' data and without secrets (hashes of passwords
// and tokens, the second factor's secret). The records of their exports
// and erasures are not part of it: they are the institution's proof of
// what it did, and hold nothing of the person but their ID.
var kernelExports = []kernelExport{
	{"account", "users", "", `SELECT json_build_object('id', id, 'email', email, 'display_name', display_name, 'operator', is_operator,
		'email_verified_at', email_verified_at, 'mfa_enabled_at', mfa_enabled_at, 'created_at', created_at, 'updated_at', updated_at)
		FROM kernel.users WHERE id = $2 AND EXISTS (SELECT 1 FROM kernel.memberships m WHERE m.user_id = $2 AND m.tenant_id = $1)`},
	{"memberships", "memberships", "", `SELECT json_build_object('tenant_id', m.tenant_id, 'institution', t.name, 'roles', m.roles, 'joined_at', m.created_at, 'updated_at', m.updated_at)
		FROM kernel.memberships m JOIN kernel.tenants t ON t.id = m.tenant_id WHERE m.tenant_id = $1 AND m.user_id = $2`},
	{"sessions", "sessions", "", `SELECT json_build_object('id', id, 'tenant_id', tenant_id, 'created_at', created_at, 'last_used_at', last_used_at,
		'expires_at', expires_at, 'revoked_at', revoked_at, 'ip', ip, 'user_agent', user_agent, 'mfa', mfa)
		FROM kernel.sessions WHERE user_id = $2 AND (tenant_id = $1 OR tenant_id IS NULL AND EXISTS (SELECT 1 FROM kernel.memberships m WHERE m.user_id = $2 AND m.tenant_id = $1)) ORDER BY created_at`},
	{"mfa_recovery_codes", "mfa_recovery_codes", "", `SELECT json_build_object('used_at', used_at) FROM kernel.mfa_recovery_codes WHERE user_id = $2 AND EXISTS (SELECT 1 FROM kernel.memberships m WHERE m.user_id = $2 AND m.tenant_id = $1)`},
	{"password_resets", "password_resets", "", `SELECT json_build_object('created_at', created_at, 'expires_at', expires_at, 'used_at', used_at)
		FROM kernel.password_resets WHERE user_id = $2 AND EXISTS (SELECT 1 FROM kernel.memberships m WHERE m.user_id = $2 AND m.tenant_id = $1) ORDER BY created_at`},
	{"email_verifications", "email_verifications", "", `SELECT json_build_object('email', email, 'created_at', created_at, 'expires_at', expires_at, 'used_at', used_at)
		FROM kernel.email_verifications WHERE user_id = $2 AND EXISTS (SELECT 1 FROM kernel.memberships m WHERE m.user_id = $2 AND m.tenant_id = $1) ORDER BY created_at`},
	{"invitations", "invitations", "", `SELECT json_build_object('id', id, 'email', email, 'roles', roles, 'created_at', created_at, 'expires_at', expires_at,
		'accepted_at', accepted_at, 'revoked_at', revoked_at)
		FROM kernel.invitations WHERE tenant_id = $1 AND (accepted_by = $2 OR (lower(email) = lower($4) AND $4 <> '')) ORDER BY created_at`},
	// The invitations they sent: that they did, not to whom.
	{"invitations", "invitations", "invitations.references.jsonl", `SELECT json_build_object('id', id, 'invited_by', invited_by, 'created_at', created_at)
		FROM kernel.invitations WHERE tenant_id = $1 AND invited_by = $2 ORDER BY created_at`},
	{"api_keys", "api_keys", "", `SELECT json_build_object('id', id, 'name', name, 'permissions', permissions, 'created_at', created_at,
		'expires_at', expires_at, 'revoked_at', revoked_at, 'last_used_at', last_used_at)
		FROM kernel.api_keys WHERE tenant_id = $1 AND created_by = $2 ORDER BY created_at`},
	{"tenant_plugins", "tenant_plugins", "tenant_plugins.references.jsonl", `SELECT json_build_object('plugin', plugin, 'updated_by', updated_by, 'updated_at', updated_at)
		FROM kernel.tenant_plugins WHERE tenant_id = $1 AND updated_by = $2 ORDER BY plugin`},
	{"job_runs", "job_runs", "", `SELECT json_build_object('id', id, 'plugin', plugin, 'job', job, 'args', args, 'status', status, 'created_at', created_at)
		FROM kernel.job_runs WHERE tenant_id = $1 AND requested_by = $3 ORDER BY created_at`},
}

// exportPersonKernel writes the kernel's part of a person's export:
// kernel/<class>.jsonl for each class (empty ones too), the audit entries
// and events of the institution that mention them.
func (s *Service) exportPersonKernel(ctx context.Context, b *bundle, tenantID, userID uuid.UUID) error {
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		// One snapshot for the whole part.
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
			return err
		}
		p, _, err := person(ctx, tx, userID)
		if err != nil {
			return err
		}
		for _, x := range kernelExports {
			file := x.file
			if file == "" {
				file = x.class + ".jsonl"
			}
			err := b.write("kernel/"+file, KernelSource, "", x.class, x.table, func(w io.Writer) error {
				// The CTE types every parameter, whichever the query uses.
				rows, err := tx.Query(ctx, `WITH params AS (SELECT $1::uuid, $2::uuid, $3::text, $4::text) `+x.query,
					tenantID, userID, "user:"+userID.String(), p.Email)
				if err != nil {
					return err
				}
				defer rows.Close()
				for rows.Next() {
					var line []byte
					if err := rows.Scan(&line); err != nil {
						return err
					}
					if _, err := w.Write(append(line, '\n')); err != nil {
						return err
					}
				}
				return rows.Err()
			})
			if err != nil {
				return wrap("exporting "+x.class, err)
			}
		}
		if err := s.exportAudit(ctx, tx, b, tenantID, p); err != nil {
			return wrap("exporting the audit entries", err)
		}
		return wrap("exporting the events", s.exportEvents(ctx, tx, b, tenantID, p))
	})
}

// exportAudit writes the institution's audit entries that mention the
// person: for each, what happened and when, whether they did it, and the
// address they did it from; not the details, which may be others'; and not
// the records of the lifecycle itself (their exports and erasures).
func (s *Service) exportAudit(ctx context.Context, tx pgx.Tx, b *bundle, tenantID uuid.UUID, p audit.Person) error {
	entries, err := audit.Mentioning(ctx, tx, audit.Chain(tenantID.String()), p)
	if err != nil {
		return err
	}
	return b.write("kernel/audit.jsonl", KernelSource, "", "audit", "audit_personal", func(w io.Writer) error {
		j := newJSONL(w)
		for _, e := range entries {
			if strings.HasPrefix(e.Action, "privacy.") {
				continue // the lifecycle's own records: the institution's proof, not the person's data
			}
			line := map[string]any{"seq": e.Seq, "action": e.Action, "at": e.CreatedAt, "request_id": e.RequestID}
			if e.ActorID == p.UserID {
				line["as"] = "actor"
				line["ip"] = e.IP
			} else {
				line["as"] = "subject"
			}
			if err := j.line(line); err != nil {
				return err
			}
		}
		return nil
	})
}

// exportEvents writes the institution's events that mention the person,
// without the one-time tokens some carry to an inbox.
func (s *Service) exportEvents(ctx context.Context, tx pgx.Tx, b *bundle, tenantID uuid.UUID, p audit.Person) error {
	sc := newScrubber([]audit.Person{p}, nil)
	rows, err := tx.Query(ctx, `SELECT id, type, source, occurred_at, data FROM kernel.events
		WHERE tenant_id = $3 AND rejected IS NULL AND (`+mentionSQL("data::text")+` OR `+mentionSQL("actor")+`) ORDER BY seq`, sc.Substrings, sc.Words, tenantID)
	if err != nil {
		return err
	}
	type event struct {
		ID         uuid.UUID      `json:"id"`
		Type       string         `json:"type"`
		Source     string         `json:"source"`
		OccurredAt any            `json:"occurred_at"`
		Data       map[string]any `json:"data"`
	}
	var evs []event
	for rows.Next() {
		var e event
		var data []byte
		if err := rows.Scan(&e.ID, &e.Type, &e.Source, &e.OccurredAt, &data); err != nil {
			rows.Close()
			return err
		}
		_ = json.Unmarshal(data, &e.Data)
		delete(e.Data, "token")
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	return b.write("kernel/events.jsonl", KernelSource, "", "events", "events", func(w io.Writer) error {
		j := newJSONL(w)
		for _, e := range evs {
			if err := j.line(e); err != nil {
				return err
			}
		}
		return nil
	})
}
