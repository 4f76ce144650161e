package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// RetentionBatch is how many rows one transaction of the generic
// retention SQL deletes or anonymises.
const RetentionBatch = 1000

// applyRetention serves ApplyRetention: it checks the request against the
// class, then runs the class's Apply or the generic SQL.
func (rt *runtime) applyRetention(ctx context.Context, in *pluginv1.RetentionRequest) (*pluginv1.RetentionResult, error) {
	rc, ok := rt.retention[in.Class]
	if !ok {
		return nil, Errorf(ErrInvalid, "no retention class %q in plugin %s", in.Class, rt.wire.Name)
	}
	var wc *pluginv1.RetentionClass
	for _, c := range rt.wire.Retention {
		if c.Name == in.Class {
			wc = c
		}
	}
	if err := wire.CheckRetentionRequest(wc, in, time.Now()); err != nil {
		return nil, Errorf(ErrInvalid, "%v", err)
	}
	if _, err := uuid.Parse(in.TenantId); err != nil {
		return nil, Errorf(ErrInvalid, "tenant_id %q is not a UUID", in.TenantId)
	}
	run := &RetentionRun{RetentionRequest: DecodeRetentionRequest(in), Class: rc, rt: rt}
	var res RetentionResult
	var err error
	if rc.Apply != nil {
		res, err = rc.Apply(ctx, run)
	} else {
		res, err = rt.defaultRetention(ctx, run)
	}
	if err != nil {
		return nil, err
	}
	res.Class = rc.Name
	if len(res.SampleIDs) > run.SampleLimit {
		res.SampleIDs = res.SampleIDs[:run.SampleLimit]
	}
	return EncodeRetentionResult(res), nil
}

// retentionPlan is a class against the catalog: quoted names.
type retentionPlan struct {
	table   string // quoted, schema-qualified
	time    string // quoted column
	pk      []string
	id      *storage.Column // the ID column (RetentionClass.ID); nil: the primary key
	subject *storage.Column
	holds   map[string]*storage.Column // hold kind -> column
	anon    []planColumn
}

func (rt *runtime) planRetention(ctx context.Context, rc RetentionClass) (*retentionPlan, error) {
	cat, err := rt.catalog(ctx)
	if err != nil {
		return nil, err
	}
	where := fmt.Sprintf("retention class %q", rc.Name)
	t := cat.Tables[rc.Table]
	switch {
	case t == nil:
		return nil, fmt.Errorf("%s: schema %s has no table %q", where, cat.Schema, rc.Table)
	case !t.TenantScoped():
		return nil, fmt.Errorf("%s: table %s has no tenant_id column, so the generic SQL could reach every institution's rows: give the class an Apply function", where, rc.Table)
	case len(t.PrimaryKey) == 0:
		return nil, fmt.Errorf("%s: table %s has no primary key, which names its rows (sample IDs, their order)", where, rc.Table)
	}
	p := &retentionPlan{table: pgx.Identifier{cat.Schema, rc.Table}.Sanitize(), pk: t.PrimaryKey, holds: map[string]*storage.Column{}}
	tc := t.Column(rc.TimeColumn)
	if tc == nil {
		return nil, fmt.Errorf("%s: table %s has no time column %q", where, rc.Table, rc.TimeColumn)
	}
	if c := tc.TypeClass(); !strings.HasPrefix(tc.Type, "timestamp") && tc.Type != "date" {
		return nil, fmt.Errorf("%s: time column %s.%s is %s (%s), not a timestamp or date", where, rc.Table, rc.TimeColumn, tc.Type, c)
	}
	p.time = qi(rc.TimeColumn)
	if rc.ID != "" {
		if p.id = t.Column(rc.ID); p.id == nil {
			return nil, fmt.Errorf("%s: table %s has no ID column %q", where, rc.Table, rc.ID)
		}
	}
	if rc.Subject != "" {
		if p.subject = t.Column(rc.Subject); p.subject == nil {
			return nil, fmt.Errorf("%s: table %s has no subject column %q", where, rc.Table, rc.Subject)
		}
		p.holds[HoldPerson] = p.subject
	}
	for kind, col := range rc.HoldColumns {
		c := t.Column(col)
		if c == nil {
			return nil, fmt.Errorf("%s: hold %q: table %s has no column %q", where, kind, rc.Table, col)
		}
		p.holds[kind] = c
	}
	for _, pc := range rc.Anonymise {
		col := t.Column(pc.Name)
		if col == nil {
			return nil, fmt.Errorf("%s: table %s has no column %q to anonymise", where, rc.Table, pc.Name)
		}
		c := planColumn{PersonalColumn: pc, col: col}
		if _, err := erasedValue(&stmt{}, c, "t"); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		p.anon = append(p.anon, c)
	}
	return p, nil
}

// checkRetention reports what keeps the generic SQL from the classes
// that rely on it (sdk/plugintest runs it).
func (rt *runtime) checkRetention(ctx context.Context) error {
	var errs []error
	for _, rc := range rt.retention {
		if rc.Apply != nil {
			continue
		}
		p, err := rt.planRetention(ctx, rc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, a := range rc.Actions {
			if a == RetainAnonymise && len(p.anon) == 0 {
				errs = append(errs, fmt.Errorf("retention class %q: action anonymise names no columns to anonymise (Anonymise)", rc.Name))
			}
		}
	}
	return errors.Join(errs...)
}

// selection is the condition "expired and under no hold" on alias t, with
// its arguments in s.
func (p *retentionPlan) selection(s *stmt, r *RetentionRun, alias string) string {
	conds := []string{alias + "." + p.time + " < " + s.arg(r.Cutoff) + "::timestamptz"}
	ids := map[string][]string{}
	for _, h := range r.Holds {
		ids[h.Kind] = append(ids[h.Kind], h.ID)
	}
	for kind, col := range p.holds {
		held := ids[kind]
		if len(held) == 0 {
			continue
		}
		if col.TypeClass() == "uuid" { // compare canonical forms; a non-UUID matches no row
			var canon []string
			for _, id := range held {
				if u, err := uuid.Parse(id); err == nil {
					canon = append(canon, u.String())
				}
			}
			held = canon
		}
		conds = append(conds, fmt.Sprintf("NOT COALESCE(%s.%s::text = ANY(%s::text[]), false)", alias, qi(col.Name), s.arg(held)))
	}
	return strings.Join(conds, " AND ")
}

// notAnonymised is the condition "some column anonymise clears still
// holds something", so that anonymised rows are not selected again.
func (p *retentionPlan) notAnonymised(s *stmt, alias string) (string, error) {
	var conds []string
	for _, c := range p.anon {
		v, err := erasedValue(s, c, alias)
		if err != nil {
			return "", err
		}
		conds = append(conds, fmt.Sprintf("%s.%s IS DISTINCT FROM %s", alias, qi(c.Name), v))
	}
	return "(" + strings.Join(conds, " OR ") + ")", nil
}

func (p *retentionPlan) keyText(alias string) string {
	if len(p.pk) == 1 {
		return alias + "." + qi(p.pk[0]) + "::text"
	}
	parts := make([]string, len(p.pk))
	for i, k := range p.pk {
		parts[i] = alias + "." + qi(k) + "::text"
	}
	return "concat_ws('/', " + strings.Join(parts, ", ") + ")"
}

// idText is a row's ID as samples and Cascade get it.
func (p *retentionPlan) idText(alias string) string {
	if p.id != nil {
		return alias + "." + qi(p.id.Name) + "::text"
	}
	return p.keyText(alias)
}

func (p *retentionPlan) keyList(alias string) string {
	parts := make([]string, len(p.pk))
	for i, k := range p.pk {
		parts[i] = alias + "." + qi(k)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// defaultRetention is the generic SQL: count and sample in a dry run;
// delete or anonymise in batches of their own transactions otherwise.
func (rt *runtime) defaultRetention(ctx context.Context, r *RetentionRun) (RetentionResult, error) {
	res := RetentionResult{Class: r.Class.Name}
	if r.Held(HoldTenant, "") {
		return res, nil // the institution is on hold: nothing is selected
	}
	p, err := rt.planRetention(ctx, r.Class)
	if err != nil {
		return res, err
	}
	if r.Action == RetainArchive && !rt.canArchive() {
		return res, Errorf(ErrInvalid, "retention class %q: archive writes to the plugin's object storage: the plugin must declare the capability %q", r.Class.Name, CapStorage)
	}
	if r.Action == RetainAnonymise && len(p.anon) == 0 {
		return res, Errorf(ErrInvalid, "retention class %q: anonymise names no columns (Anonymise)", r.Class.Name)
	}
	// where is the selection on alias, its arguments in s: the same for
	// the dry run and the execution.
	where := func(s *stmt, alias string) (string, error) {
		cond := p.selection(s, r, alias)
		if r.Action == RetainAnonymise {
			na, err := p.notAnonymised(s, alias)
			if err != nil {
				return "", err
			}
			cond += " AND " + na
		}
		return cond, nil
	}
	if r.DryRun {
		var s stmt
		cond, err := where(&s, "t")
		if err != nil {
			return res, err
		}
		err = rt.tx(ctx, r.TenantID, func(tx pgx.Tx) error {
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+p.table+" t WHERE "+cond, s.args...).Scan(&res.Matched); err != nil {
				return fmt.Errorf("counting expired rows of %s: %w", r.Class.Name, err)
			}
			if r.SampleLimit == 0 {
				return nil
			}
			sample := s
			sample.args = append([]any(nil), s.args...)
			rows, err := tx.Query(ctx, "SELECT "+p.idText("t")+" FROM "+p.table+" t WHERE "+cond+
				" ORDER BY t."+p.time+", "+strings.Trim(p.keyList("t"), "()")+" LIMIT "+sample.arg(r.SampleLimit), sample.args...)
			if err != nil {
				return fmt.Errorf("sampling expired rows of %s: %w", r.Class.Name, err)
			}
			res.SampleIDs, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		return res, err
	}
	return rt.executeRetention(ctx, r, p, where)
}

// retentionCursor is the name of the cursor an execution reads the
// selection from.
const retentionCursor = "edulure_retention"

// executeRetention deletes or anonymises the selection. The selection's
// keys are read once, by a cursor held across transactions (one scan of
// the table, however many batches), then handled RetentionBatch at a
// time, each batch in its own transaction: its rows are locked (and
// checked again against the selection, so a row changed meanwhile is
// left), Cascade clears what hangs off them, then exactly they change.
func (rt *runtime) executeRetention(ctx context.Context, r *RetentionRun, p *retentionPlan, where func(*stmt, string) (string, error)) (RetentionResult, error) {
	res := RetentionResult{Class: r.Class.Name}
	var s stmt
	cond, err := where(&s, "b")
	if err != nil {
		return res, err
	}
	// The cursor reads each selected row's place (table and tuple ID):
	// a batch then finds its rows by TID scans, whatever the table's keys
	// and indexes, and checks each again against the selection, so that a
	// row changed meanwhile (moved, or no longer selected) is left.
	declare := "DECLARE " + retentionCursor + " NO SCROLL CURSOR WITH HOLD FOR SELECT b.tableoid, b.ctid::text FROM " + p.table + " b WHERE " + cond
	const places = "t.ctid = ANY($1::text[]::tid[]) AND (t.tableoid, t.ctid) IN (SELECT u.o, u.c FROM unnest($2::oid[], $1::text[]::tid[]) AS u(o, c))"
	l := stmt{args: []any{nil, nil}}
	lockCond, err := where(&l, "t")
	if err != nil {
		return res, err
	}
	lock := "SELECT t.tableoid, t.ctid::text, " + p.idText("t") + " FROM " + p.table + " t WHERE " + places + " AND " + lockCond + " FOR UPDATE OF t"
	c := stmt{args: []any{nil, nil}}
	var change string
	switch r.Action {
	case RetainDelete, RetainArchive: // archive: each batch stored first (archiveBatch)
		change = "DELETE FROM " + p.table + " t WHERE " + places
	case RetainAnonymise:
		var sets []string
		for _, col := range p.anon {
			v, err := erasedValue(&c, col, "t")
			if err != nil {
				return res, err
			}
			sets = append(sets, qi(col.Name)+" = "+v)
		}
		if p.subject != nil && !containsColumn(p.anon, r.Class.Subject) {
			pseudo := "gen_random_uuid()"
			if p.subject.TypeClass() != "uuid" {
				pseudo += "::text"
			}
			sets = append(sets, qi(r.Class.Subject)+" = "+pseudo)
		}
		change = "UPDATE " + p.table + " t SET " + strings.Join(sets, ", ") + " WHERE " + places
	}

	conn, err := rt.db.Pool.Acquire(ctx)
	if err != nil {
		return res, fmt.Errorf("applying retention of %s: %w", r.Class.Name, err)
	}
	defer conn.Release()
	// tx runs fn in a transaction of conn scoped to the institution.
	tx := func(fn func(tx pgx.Tx) error) error {
		t, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer t.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // after Commit it is a no-op
		if _, err := t.Exec(ctx, "SELECT set_config('"+TenantSetting+"', $1, true)", r.TenantID); err != nil {
			return err
		}
		if err := fn(t); err != nil {
			return err
		}
		return t.Commit(ctx)
	}
	if err := tx(func(t pgx.Tx) error { _, err := t.Exec(ctx, declare, s.args...); return err }); err != nil {
		return res, fmt.Errorf("applying retention of %s: selecting: %w", r.Class.Name, err)
	}
	defer func() {
		// A connection whose cursor cannot be closed is not given back.
		bg := context.WithoutCancel(ctx)
		if _, err := conn.Exec(bg, "CLOSE "+retentionCursor); err != nil {
			conn.Conn().Close(bg) //nolint:errcheck
		}
	}()
	fetch := fmt.Sprintf("FETCH %d FROM %s", RetentionBatch, retentionCursor)
	for {
		fetched := 0
		err := tx(func(t pgx.Tx) error {
			var oids []uint32
			var tids []string
			rows, err := t.Query(ctx, fetch)
			if err != nil {
				return err
			}
			var oid uint32
			var tid string
			if _, err := pgx.ForEachRow(rows, []any{&oid, &tid}, func() error {
				oids, tids = append(oids, oid), append(tids, tid)
				return nil
			}); err != nil || len(tids) == 0 {
				return err
			}
			fetched = len(tids)
			largs := append([]any{tids, oids}, l.args[2:]...)
			if rows, err = t.Query(ctx, lock, largs...); err != nil {
				return err
			}
			var lockedOids []uint32
			var lockedTids, ids []string
			var id string
			if _, err := pgx.ForEachRow(rows, []any{&oid, &tid, &id}, func() error {
				lockedOids, lockedTids, ids = append(lockedOids, oid), append(lockedTids, tid), append(ids, id)
				return nil
			}); err != nil || len(ids) == 0 {
				return err
			}
			archived := ""
			if r.Action == RetainArchive {
				if archived, err = rt.archiveBatch(ctx, r, p, t, lockedTids, lockedOids); err != nil {
					return err
				}
			}
			if r.Class.Cascade != nil {
				if err := r.Class.Cascade(ctx, r, t, ids); err != nil {
					return fmt.Errorf("cascade: %w", err)
				}
			}
			tag, err := t.Exec(ctx, change, append([]any{lockedTids, lockedOids}, c.args[2:]...)...)
			if err != nil {
				return err
			}
			res.Matched += tag.RowsAffected()
			res.Affected += tag.RowsAffected()
			if archived != "" {
				res.Archived = append(res.Archived, archived)
			}
			if room := r.SampleLimit - len(res.SampleIDs); room > 0 {
				res.SampleIDs = append(res.SampleIDs, ids[:min(room, len(ids))]...)
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("applying retention of %s: %w", r.Class.Name, err)
		}
		if fetched < RetentionBatch {
			return res, nil
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
}

func containsColumn(cs []planColumn, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
}
