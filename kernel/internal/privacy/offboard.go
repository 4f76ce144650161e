package privacy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
)

// OffboardingPreview is what offboarding an institution would erase,
// source by source, table by table: the dry run operators read first.
type OffboardingPreview struct {
	TenantID uuid.UUID     `json:"tenant_id"`
	Slug     string        `json:"slug"`
	Name     string        `json:"name"`
	Parts    []PreviewPart `json:"parts"`
}

// PreviewPart is one source's share of an offboarding.
type PreviewPart struct {
	Source string  `json:"source"` // "kernel" or a plugin's name
	Counts []Count `json:"counts"`
	// Error: the plugin could not count (it is not running); offboarding
	// would wait for it.
	Error string `json:"error,omitempty"`
}

// PreviewOffboarding counts what offboarding the institution would erase,
// changing nothing: each plugin's EraseTenantData with dry_run (every
// plugin, enabled for the institution or not), and the kernel's tables.
func (s *Service) PreviewOffboarding(ctx context.Context, tenantID uuid.UUID) (OffboardingPreview, error) {
	out := OffboardingPreview{TenantID: tenantID}
	err := s.pool.QueryRow(ctx, `SELECT slug, name FROM kernel.tenants WHERE id = $1`, tenantID).Scan(&out.Slug, &out.Name)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, sdk.Errorf(sdk.ErrNotFound, "no such institution")
	}
	if err != nil {
		return out, err
	}
	r := &Request{ID: uuid.Nil, Kind: KindOffboarding, TenantID: tenantID, TenantSlug: out.Slug, Outcome: map[string]any{}}
	for _, p := range s.plugins.PersonalDataPlugins() {
		part := PreviewPart{Source: p.Name, Counts: []Count{}}
		counts, err := s.eraseTenantPlugin(ctx, r, p.Name, true)
		if err != nil {
			part.Error = errorText(err)
		} else if counts != nil {
			part.Counts = counts
		}
		out.Parts = append(out.Parts, part)
	}
	counts, err := s.eraseTenantKernel(ctx, r, true)
	if err != nil {
		return out, err
	}
	if counts == nil {
		counts = []Count{}
	}
	out.Parts = append(out.Parts, PreviewPart{Source: KernelSource, Counts: counts})
	return out, nil
}

// RequestOffboarding starts an institution's offboarding in tx: nobody
// signs in to it any more (its sessions and API keys are revoked, its
// members' logins refused), and the request's steps are queued: export
// everything, then each plugin erases the institution, then the kernel.
// The caller audits it.
func (s *Service) RequestOffboarding(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID, requestedBy string) (Request, error) {
	if err := s.requireStorage(); err != nil {
		return Request{}, err
	}
	var slug string
	var since *time.Time
	err := tx.QueryRow(ctx, `SELECT slug, offboarding_at FROM kernel.tenants WHERE id = $1 FOR UPDATE`, tenantID).Scan(&slug, &since)
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, sdk.Errorf(sdk.ErrNotFound, "no such institution")
	}
	if err != nil {
		return Request{}, err
	}
	if since != nil {
		return Request{}, sdk.Errorf(sdk.ErrConflict, "the institution is already being offboarded: GET /api/v1/tenants/%s/offboarding", tenantID).WithCode("offboarding-under-way")
	}
	for _, stmt := range []string{
		`UPDATE kernel.tenants SET offboarding_at = now(), updated_at = now() WHERE id = $1`,
		`UPDATE kernel.sessions SET revoked_at = now(), revoked_reason = 'offboarding' WHERE tenant_id = $1 AND revoked_at IS NULL`,
		`UPDATE kernel.api_keys SET revoked_at = now() WHERE tenant_id = $1 AND revoked_at IS NULL`,
		`UPDATE kernel.invitations SET revoked_at = now() WHERE tenant_id = $1 AND accepted_at IS NULL AND revoked_at IS NULL`,
		`SELECT pg_notify('edulure_changes', 'tenant:' || $1::text)`,
	} {
		if _, err := tx.Exec(ctx, stmt, tenantID); err != nil {
			return Request{}, err
		}
	}
	steps := append(append([]string{StepExport}, s.pluginSteps(KindOffboarding)...), StepKernelData)
	r, err := s.insertRequest(ctx, tx, Request{
		ID: uuid.Must(uuid.NewV7()), Kind: KindOffboarding, TenantID: tenantID, TenantSlug: slug, RequestedBy: requestedBy,
		State: StateScheduled, NotBefore: s.now(),
	}, steps)
	if err != nil {
		return r, err
	}
	if err := history(ctx, tx, r.ID, "requested", "", requestedBy, "the institution's sign-ins are stopped; its export runs first"); err != nil {
		return r, err
	}
	return r, s.enqueue(ctx, tx, r, r.NotBefore)
}

// Offboarding returns an institution's offboarding.
func (s *Service) Offboarding(ctx context.Context, q database.Querier, tenantID uuid.UUID) (Request, error) {
	var id uuid.UUID
	err := q.QueryRow(ctx, `SELECT id FROM kernel.privacy_requests WHERE kind = 'offboarding' AND tenant_id = $1`, tenantID).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Request{}, sdk.Errorf(sdk.ErrNotFound, "the institution is not being offboarded")
	}
	if err != nil {
		return Request{}, err
	}
	return s.Get(ctx, q, tenantID, id)
}

// OffboardingExport is an offboarding's export (its ID is the request's).
func (s *Service) OffboardingExport(ctx context.Context, q database.Querier, tenantID uuid.UUID) (Export, error) {
	r, err := s.Offboarding(ctx, q, tenantID)
	if err != nil {
		return Export{}, err
	}
	return s.GetExport(ctx, q, tenantID, r.ID)
}

// eraseTenantPlugin erases (or with dry counts) what a plugin holds for
// the institution: through its EraseTenantData when it serves it; else the
// kernel deletes the rows of every table of its schema with a tenant_id,
// as the SDK would.
func (s *Service) eraseTenantPlugin(ctx context.Context, r *Request, plugin string, dry bool) ([]Count, error) {
	served := false
	for _, p := range s.plugins.PersonalDataPlugins() {
		if p.Name == plugin {
			served = p.Served
		}
	}
	if !served {
		return s.deleteSchemaRows(ctx, plugin, r.TenantID, dry)
	}
	ctx, cancel := s.callCtx(ctx)
	defer cancel()
	resp, err := s.plugins.EraseTenantData(ctx, plugin, &pluginv1.ErasureTenantRequest{TenantId: r.TenantID.String(), DryRun: dry, RequestId: r.ID.String()})
	if err != nil {
		return nil, err
	}
	return countsOf(resp.GetCounts()), nil
}

// asOwner runs fn in a transaction as plugin's schema owner, scoped to the
// institution by row-level security.
func (s *Service) asOwner(ctx context.Context, plugin string, tenantID uuid.UUID, fn func(tx pgx.Tx, cat *storage.Catalog) error) error {
	spec := s.plugins.StorageSpec(plugin)
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2)`,
			spec.Schema(), spec.OwnerRole()).Scan(&exists); err != nil || !exists {
			return err
		}
		cat, err := storage.ReadCatalog(ctx, tx, spec.Schema())
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+pgx.Identifier{spec.OwnerRole()}.Sanitize()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "SELECT set_config('edulure.tenant_id', $1, true)", tenantID.String()); err != nil {
			return err
		}
		return fn(tx, cat)
	})
}

// deleteSchemaRows deletes (or with dry counts) the institution's rows of
// every table with a tenant_id in a plugin's schema, children first.
func (s *Service) deleteSchemaRows(ctx context.Context, plugin string, tenantID uuid.UUID, dry bool) ([]Count, error) {
	var counts []Count
	err := s.asOwner(ctx, plugin, tenantID, func(tx pgx.Tx, cat *storage.Catalog) error {
		for _, t := range cat.DeleteOrder() {
			q := pgx.Identifier{cat.Schema, t}.Sanitize()
			var n int64
			if dry {
				if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+q).Scan(&n); err != nil {
					return err
				}
			} else {
				tag, err := tx.Exec(ctx, "DELETE FROM "+q)
				if err != nil {
					return fmt.Errorf("deleting from %s: %w", q, err)
				}
				n = tag.RowsAffected()
			}
			if n > 0 {
				counts = append(counts, Count{Table: t, Deleted: uint64(n)})
			}
		}
		return nil
	})
	return counts, err
}

// pluginSchemas are the plugins with a schema in the database, loaded now
// or not.
func (s *Service) pluginSchemas(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT substr(nspname, 8) FROM pg_namespace WHERE nspname LIKE 'plugin\_%' ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// tenantTables are the kernel's rows of an institution, in the order they
// are deleted (children first); the tenants row goes last.
var tenantTables = []struct{ table, where string }{
	{"idempotency_keys", "scope LIKE '%:' || $1::text"},
	{"deliveries", "tenant_id = $1"},
	{"events", "tenant_id = $1"},
	{"outbox", "tenant_id = $1"},
	{"job_runs", "tenant_id = $1"},
	{"data_exports", "tenant_id = $1 AND user_id IS NOT NULL"},
	{"privacy_requests", "tenant_id = $1 AND kind = 'erasure'"},
	{"sessions", "tenant_id = $1"},
	{"mfa_challenges", "tenant_id = $1"},
	{"api_keys", "tenant_id = $1"},
	{"invitations", "tenant_id = $1"},
	{"memberships", "tenant_id = $1"},
	{"roles", "tenant_id = $1"},
	{"tenant_plugin_secrets", "tenant_id = $1"},
	{"tenant_plugins", "tenant_id = $1"},
	{"tenants", "id = $1"},
}

// eraseTenantKernel is an offboarding's last step (with dry, its preview):
// the rows of plugins that are not loaded, the outboxes' pending events,
// the institution's remaining objects, its audit chain's personal values,
// the accounts for which it was the last institution (anonymised), and the
// kernel's rows of the institution, the institution itself last.
func (s *Service) eraseTenantKernel(ctx context.Context, r *Request, dry bool) ([]Count, error) {
	var counts []Count
	add := func(c Count) {
		if c.Deleted+c.Anonymised+c.References+c.Objects+c.Revoked > 0 {
			counts = append(counts, c)
		}
	}
	// Plugins that are not loaded: their schemas, as the SDK would.
	loaded := map[string]bool{}
	for _, p := range s.plugins.PersonalDataPlugins() {
		loaded[p.Name] = true
	}
	schemas, err := s.pluginSchemas(ctx)
	if err != nil {
		return nil, err
	}
	for _, plugin := range schemas {
		if !loaded[plugin] {
			cs, err := s.deleteSchemaRows(ctx, plugin, r.TenantID, dry)
			if err != nil {
				return nil, wrap("plugin "+plugin+" (not loaded)", err)
			}
			for _, c := range cs {
				c.Table = "plugin_" + plugin + "." + c.Table
				add(c)
			}
		}
		q := pgx.Identifier{"plugin_" + plugin, storage.Outbox}.Sanitize()
		n, err := s.countOrDelete(ctx, s.pool, q, "tenant_id = $1", r.TenantID, dry)
		if err != nil && !isUndefinedTable(err) {
			return nil, err
		}
		add(Count{Table: "plugin_" + plugin + "." + storage.Outbox, Deleted: uint64(n)})
	}
	// What the plugins left in the object storage.
	objects, err := s.tenantObjects(ctx, r.TenantID)
	if err != nil {
		return nil, err
	}
	if !dry {
		for _, key := range objects {
			sc, rel, ok := blobstore.ParseKey(key)
			if !ok || s.store == nil {
				continue
			}
			if err := s.store.Delete(ctx, sc, rel); err != nil && !errors.Is(err, sdk.ErrNotFound) {
				return nil, err
			}
		}
	}
	add(Count{Table: "blob_objects", Objects: uint64(len(objects))})
	// The accounts for which it is the last institution.
	people, err := s.lastInstitutionOf(ctx, r.TenantID)
	if err != nil {
		return nil, err
	}
	if !dry {
		if err := s.deleteBundles(ctx, `SELECT object_key FROM kernel.data_exports WHERE tenant_id = $1 AND user_id IS NOT NULL AND object_key IS NOT NULL`, r.TenantID); err != nil {
			return nil, err
		}
		ids := make([]uuid.UUID, len(people))
		for i, p := range people {
			ids[i] = uuid.MustParse(p.UserID)
		}
		if err := s.deleteBundles(ctx, `SELECT object_key FROM kernel.data_exports WHERE user_id = ANY($1) AND object_key IS NOT NULL`, ids); err != nil {
			return nil, err
		}
	}
	err = database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		chain := audit.Chain(r.TenantID.String())
		ref := "offboarding:" + r.ID.String()
		if dry {
			var n int64
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM kernel.audit_personal WHERE chain = $1 AND num_nonnulls(actor_id, target, data, ip) > 0`, chain).Scan(&n); err != nil {
				return err
			}
			add(Count{Table: "audit_personal", Anonymised: uint64(n)})
			add(Count{Table: "users", Anonymised: uint64(len(people))})
		} else {
			n, err := audit.EraseChain(ctx, tx, chain, ref)
			if err != nil {
				return err
			}
			add(Count{Table: "audit_personal", Anonymised: uint64(n)})
			if len(people) > 0 {
				if err := s.anonymiseAccounts(ctx, tx, people, ref, add); err != nil {
					return err
				}
			}
		}
		for _, t := range tenantTables {
			n, err := s.countOrDelete(ctx, tx, "kernel."+t.table, t.where, r.TenantID, dry)
			if err != nil {
				return err
			}
			add(Count{Table: t.table, Deleted: uint64(n)})
		}
		return nil
	})
	return counts, err
}

func (s *Service) countOrDelete(ctx context.Context, q database.Querier, table, where string, tenantID uuid.UUID, dry bool) (int64, error) {
	if dry {
		var n int64
		err := q.QueryRow(ctx, "SELECT count(*) FROM "+table+" WHERE "+where, tenantID).Scan(&n)
		return n, err
	}
	tag, err := q.Exec(ctx, "DELETE FROM "+table+" WHERE "+where, tenantID)
	if err != nil {
		return 0, fmt.Errorf("deleting from %s: %w", table, err)
	}
	return tag.RowsAffected(), nil
}

func isUndefinedTable(err error) bool {
	return err != nil && strings.Contains(err.Error(), "SQLSTATE 42P01")
}

// tenantObjects are the bucket keys of the institution's plugin objects.
func (s *Service) tenantObjects(ctx context.Context, tenantID uuid.UUID) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT key FROM kernel.blob_objects WHERE tenant_id = $1 ORDER BY key`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// lastInstitutionOf lists the members of the institution who belong to no
// other and are not operators: their accounts are anonymised with it.
func (s *Service) lastInstitutionOf(ctx context.Context, tenantID uuid.UUID) ([]audit.Person, error) {
	rows, err := s.pool.Query(ctx, `SELECT u.id::text, u.email, u.display_name FROM kernel.memberships m JOIN kernel.users u ON u.id = m.user_id
		WHERE m.tenant_id = $1 AND NOT u.is_operator AND NOT EXISTS (SELECT 1 FROM kernel.memberships o WHERE o.user_id = m.user_id AND o.tenant_id <> $1)
		ORDER BY u.id`, tenantID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[audit.Person])
}

// anonymiseAccounts makes people's accounts tombstones and erases them
// from the platform's records, as an erasure does for one person.
func (s *Service) anonymiseAccounts(ctx context.Context, tx pgx.Tx, people []audit.Person, ref string, add func(Count)) error {
	ids := make([]uuid.UUID, len(people))
	pseudonyms := make([]string, len(people))
	for i, p := range people {
		ids[i] = uuid.MustParse(p.UserID)
		pseudonyms[i] = uuid.NewString()
	}
	for _, st := range []struct{ table, sql string }{
		{"sessions", `DELETE FROM kernel.sessions WHERE user_id = ANY($1)`},
		{"mfa_recovery_codes", `DELETE FROM kernel.mfa_recovery_codes WHERE user_id = ANY($1)`},
		{"mfa_challenges", `DELETE FROM kernel.mfa_challenges WHERE user_id = ANY($1)`},
		{"password_resets", `DELETE FROM kernel.password_resets WHERE user_id = ANY($1)`},
		{"email_verifications", `DELETE FROM kernel.email_verifications WHERE user_id = ANY($1)`},
		{"data_exports", `DELETE FROM kernel.data_exports WHERE user_id = ANY($1)`},
	} {
		tag, err := tx.Exec(ctx, st.sql, ids)
		if err != nil {
			return fmt.Errorf("erasing from %s: %w", st.table, err)
		}
		add(Count{Table: st.table, Deleted: uint64(tag.RowsAffected())})
	}
	scopes := make([]string, len(ids))
	for i, id := range ids {
		scopes[i] = "user:" + id.String() + ":"
	}
	tag, err := tx.Exec(ctx, `DELETE FROM kernel.idempotency_keys k USING unnest($1::text[]) s WHERE starts_with(k.scope, s)`, scopes)
	if err != nil {
		return err
	}
	add(Count{Table: "idempotency_keys", Deleted: uint64(tag.RowsAffected())})
	n, err := anonymiseAccounts(ctx, tx, ids)
	if err != nil {
		return err
	}
	add(Count{Table: "users", Anonymised: uint64(n)})
	if n, err = audit.Redact(ctx, tx, audit.PlatformChain, people, ref); err != nil {
		return err
	}
	add(Count{Table: "audit_personal", Class: "platform", Anonymised: uint64(n)})
	sc := newScrubber(people, pseudonyms)
	return s.scrubRecords(ctx, tx, sc, "tenant_id IS NULL AND $3::uuid IS NULL", nil, func(table string, c Count) {
		c.Table = table
		add(c)
	})
}

// exportInstitution is an offboarding's first step: everything the
// institution has, in one archive kept OffboardingRetention under
// kernel/offboarding/ (outside the institution's storage, which goes): the
// kernel's rows of it (members with their addresses and names, roles,
// invitations, keys without their secrets, settings without secret ones,
// the audit log with its personal values, events, job runs), every
// plugin's rows of it (every table with a tenant_id of every plugin
// schema, read as its owner under row-level security), and its objects.
func (s *Service) exportInstitution(ctx context.Context, r *Request) ([]Count, error) {
	if err := s.requireStorage(); err != nil {
		return nil, err
	}
	var state string
	err := s.pool.QueryRow(ctx, `SELECT state FROM kernel.data_exports WHERE id = $1`, r.ID).Scan(&state)
	if err == nil && state == ExportReady {
		r.Outcome["export_id"] = r.ID.String()
		return nil, nil
	}
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.pool.Exec(ctx, `INSERT INTO kernel.data_exports (id, tenant_id, requested_by, state, started_at) VALUES ($1, $2, $3, 'running', now())`,
			r.ID, r.TenantID, r.RequestedBy); err != nil {
			return nil, err
		}
	}
	b, err := newBundle()
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := s.exportTenantKernel(ctx, b, r.TenantID); err != nil {
		return nil, wrap("exporting the kernel's rows", err)
	}
	schemas, err := s.pluginSchemas(ctx)
	if err != nil {
		return nil, err
	}
	versions := map[string]string{}
	for _, p := range s.plugins.PersonalDataPlugins() {
		versions[p.Name] = p.Version
	}
	for _, plugin := range schemas {
		if err := s.exportSchema(ctx, b, plugin, versions[plugin], r.TenantID); err != nil {
			return nil, wrap("exporting plugin "+plugin, err)
		}
	}
	if err := s.exportObjects(ctx, b, r.TenantID); err != nil {
		return nil, wrap("exporting the objects", err)
	}
	m, size, sum, err := b.finish(BundleManifest{ExportID: r.ID.String(), TenantID: r.TenantID.String(), CreatedAt: s.now()})
	if err != nil {
		return nil, err
	}
	key := fmt.Sprintf("%soffboarding/%s/%s.zip", blobstore.KernelPrefix, r.TenantID, r.ID)
	if err := s.upload(ctx, key, b); err != nil {
		return nil, err
	}
	if _, err := s.pool.Exec(ctx, `UPDATE kernel.data_exports SET state = 'ready', parts = $2, object_key = $3, bytes = $4, sha256 = $5,
		finished_at = now(), expires_at = $6, last_error = NULL WHERE id = $1`, r.ID, m.Parts, key, size, sum, s.now().Add(s.opts.OffboardingRetention)); err != nil {
		return nil, err
	}
	r.Outcome["export_id"] = r.ID.String()
	return []Count{{Class: "archive", Objects: uint64(len(m.Files))}}, nil
}

// tenantExports are the kernel's files of an institution's export ($1:
// the institution).
var tenantExports = []struct{ file, table, query string }{
	{"institution.jsonl", "tenants", `SELECT row_to_json(t) FROM (SELECT id, slug, name, self_signup, mfa_required_roles, erasure_cool_off_hours, created_at, updated_at
		FROM kernel.tenants WHERE id = $1) t`},
	{"members.jsonl", "memberships", `SELECT row_to_json(t) FROM (SELECT u.id AS user_id, u.email, u.display_name, m.roles, m.created_at AS joined_at
		FROM kernel.memberships m JOIN kernel.users u ON u.id = m.user_id WHERE m.tenant_id = $1 ORDER BY u.id) t`},
	{"roles.jsonl", "roles", `SELECT row_to_json(t) FROM (SELECT name, description, permissions, builtin, updated_at FROM kernel.roles WHERE tenant_id = $1 ORDER BY name) t`},
	{"invitations.jsonl", "invitations", `SELECT row_to_json(t) FROM (SELECT id, email, roles, invited_by, created_at, expires_at, accepted_at, accepted_by, revoked_at
		FROM kernel.invitations WHERE tenant_id = $1 ORDER BY id) t`},
	{"api_keys.jsonl", "api_keys", `SELECT row_to_json(t) FROM (SELECT id, name, permissions, created_by, created_at, expires_at, revoked_at, last_used_at
		FROM kernel.api_keys WHERE tenant_id = $1 ORDER BY id) t`},
	{"plugins.jsonl", "tenant_plugins", `SELECT row_to_json(t) FROM (SELECT plugin, enabled, config, updated_at, updated_by FROM kernel.tenant_plugins WHERE tenant_id = $1 ORDER BY plugin) t`},
	{"events.jsonl", "events", `SELECT row_to_json(t) FROM (SELECT id, type, source, actor, occurred_at, data - 'token' AS data FROM kernel.events
		WHERE tenant_id = $1 AND rejected IS NULL ORDER BY seq) t`},
	{"job_runs.jsonl", "job_runs", `SELECT row_to_json(t) FROM (SELECT id, plugin, job, trigger, scheduled_at, requested_by, args, status, attempts, started_at, finished_at, last_error, output
		FROM kernel.job_runs WHERE tenant_id = $1 ORDER BY id) t`},
}

func (s *Service) exportTenantKernel(ctx context.Context, b *bundle, tenantID uuid.UUID) error {
	return database.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"); err != nil {
			return err
		}
		for _, x := range tenantExports {
			if err := b.write("kernel/"+x.file, KernelSource, "", "", x.table, func(w io.Writer) error {
				return copyLines(ctx, tx, w, x.query, tenantID)
			}); err != nil {
				return wrap(x.file, err)
			}
		}
		return b.write("kernel/audit.jsonl", KernelSource, "", "", "audit_log", func(w io.Writer) error {
			j := newJSONL(w)
			var before int64
			for {
				entries, err := audit.List(ctx, tx, tenantID.String(), before, 1000)
				if err != nil {
					return err
				}
				for _, e := range entries {
					if err := j.line(e); err != nil {
						return err
					}
				}
				if len(entries) < 1000 {
					return nil
				}
				before = entries[len(entries)-1].ID
			}
		})
	})
}

// copyLines writes each row of a one-column JSON query as a line.
func copyLines(ctx context.Context, tx pgx.Tx, w io.Writer, query string, args ...any) error {
	rows, err := tx.Query(ctx, query, args...)
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
}

// exportSchema writes the institution's rows of every table with a
// tenant_id of a plugin's schema (but the kernel's outbox and inbox), as
// plugins/<name>/<table>.jsonl.
func (s *Service) exportSchema(ctx context.Context, b *bundle, plugin, version string, tenantID uuid.UUID) error {
	return s.asOwner(ctx, plugin, tenantID, func(tx pgx.Tx, cat *storage.Catalog) error {
		for _, t := range cat.Names() {
			if !cat.Tables[t].TenantScoped() || strings.HasPrefix(t, "edulure_") {
				continue
			}
			q := "SELECT row_to_json(t) FROM " + pgx.Identifier{cat.Schema, t}.Sanitize() + " t"
			if pk := cat.Tables[t].PrimaryKey; len(pk) > 0 {
				cols := make([]string, len(pk))
				for i, c := range pk {
					cols[i] = "t." + pgx.Identifier{c}.Sanitize()
				}
				q += " ORDER BY " + strings.Join(cols, ", ")
			}
			if err := b.write("plugins/"+plugin+"/"+t+".jsonl", plugin, version, "", t, func(w io.Writer) error {
				return copyLines(ctx, tx, w, q)
			}); err != nil {
				return wrap(t, err)
			}
		}
		b.part(plugin, version)
		return nil
	})
}

// exportObjects adds the institution's plugin objects as
// objects/<plugin>/<key>.
func (s *Service) exportObjects(ctx context.Context, b *bundle, tenantID uuid.UUID) error {
	keys, err := s.tenantObjects(ctx, tenantID)
	if err != nil {
		return err
	}
	for _, key := range keys {
		sc, rel, ok := blobstore.ParseKey(key)
		if !ok {
			continue
		}
		rd, _, err := s.store.Get(ctx, sc, rel)
		if errors.Is(err, sdk.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		err = b.write("objects/"+sc.Plugin+"/"+rel, sc.Plugin, "", "", "", func(w io.Writer) error {
			_, err := io.Copy(w, rd)
			return err
		})
		rd.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
