package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"

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
	if err := wire.CheckRetentionRequest(wc, in); err != nil {
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
	pkTypes []string        // the primary key columns' types
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
		return nil, fmt.Errorf("%s: table %s has no primary key, which the generic SQL batches by", where, rc.Table)
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
	for _, k := range p.pk {
		p.pkTypes = append(p.pkTypes, t.Column(k).Type)
	}
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
	if r.Action == RetainArchive {
		return res, Errorf(ErrInvalid, "retention class %q: archive needs the class's own Apply", r.Class.Name)
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
	var s stmt
	cond, err := where(&s, "b")
	if err != nil {
		return res, err
	}
	// Each batch, in its own transaction: lock the next rows selected,
	// let Cascade clear what hangs off them, then delete or anonymise
	// exactly those rows (by primary key).
	pkCols := make([]string, len(p.pk))
	for i, k := range p.pk {
		pkCols[i] = "b." + qi(k) + "::text"
	}
	pick := "SELECT " + strings.Join(pkCols, ", ") + ", " + p.idText("b") + " FROM " + p.table + " b WHERE " + cond +
		" LIMIT " + s.arg(RetentionBatch) + " FOR UPDATE OF b"
	var c stmt
	var arrays, casts []string
	for i := range p.pk {
		arrays = append(arrays, c.arg(nil)+"::text[]")
		casts = append(casts, fmt.Sprintf("u.c%d::%s", i, p.pkTypes[i]))
	}
	names := make([]string, len(p.pk))
	for i := range names {
		names[i] = fmt.Sprintf("c%d", i)
	}
	keys := "(SELECT " + strings.Join(casts, ", ") + " FROM unnest(" + strings.Join(arrays, ", ") + ") AS u(" + strings.Join(names, ", ") + "))"
	var change string
	switch r.Action {
	case RetainDelete:
		change = "DELETE FROM " + p.table + " t WHERE " + p.keyList("t") + " IN " + keys
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
		change = "UPDATE " + p.table + " t SET " + strings.Join(sets, ", ") + " WHERE " + p.keyList("t") + " IN " + keys
	}
	for {
		var n int64
		picked := 0
		err := rt.tx(ctx, r.TenantID, func(tx pgx.Tx) error {
			cols := make([][]string, len(p.pk))
			var ids []string
			rows, err := tx.Query(ctx, pick, s.args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				vals, err := rows.Values()
				if err != nil {
					rows.Close()
					return err
				}
				for i := range p.pk {
					v, _ := vals[i].(string)
					cols[i] = append(cols[i], v)
				}
				id, _ := vals[len(p.pk)].(string)
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				return err
			}
			picked = len(ids)
			if picked == 0 {
				return nil
			}
			if r.Class.Cascade != nil {
				if err := r.Class.Cascade(ctx, r, tx, ids); err != nil {
					return fmt.Errorf("cascade: %w", err)
				}
			}
			args := append([]any(nil), c.args...)
			for i := range p.pk {
				args[i] = cols[i]
			}
			tag, err := tx.Exec(ctx, change, args...)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
			if room := r.SampleLimit - len(res.SampleIDs); room > 0 {
				res.SampleIDs = append(res.SampleIDs, ids[:min(room, len(ids))]...)
			}
			return nil
		})
		if err != nil {
			return res, fmt.Errorf("applying retention of %s: %w", r.Class.Name, err)
		}
		res.Matched += n
		res.Affected += n
		if picked < RetentionBatch {
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
