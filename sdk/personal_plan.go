package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk/storage"
	"github.com/edulure/edulure/sdk/wire"
)

// personalPlan is the manifest's data classes against the plugin's
// schema: what the generic export and erasure run.
type personalPlan struct {
	catalog *storage.Catalog
	classes []*classPlan
}

// classPlan is one data class, its table and columns as the catalog has
// them, and what keeps the generic SQL from running on it.
type classPlan struct {
	DataClass
	table, parent string // quoted, schema-qualified; "" without
	subject       *storage.Column
	refs          []planColumn
	personal      []planColumn
	pk            []string
	// others are the columns other classes of the table describe: the
	// class's rows are exported without them.
	others []string
	// genericErr keeps the generic export and erasure from the class;
	// eraseErr the generic erasure only.
	genericErr, eraseErr error
}

type planColumn struct {
	PersonalColumn
	col *storage.Column
}

func (p *classPlan) rowsFile() string { return p.Name + ".jsonl" }
func (p *classPlan) refsFile() string { return p.Name + ".references.jsonl" }

// catalog reads the plugin's schema (the first on its search path). It is
// read for each call, not kept: during an upgrade the next version's
// migrations may add tables while this process still serves, and an
// institution's erasure must reach them.
func (rt *runtime) catalog(ctx context.Context) (*storage.Catalog, error) {
	if rt.db == nil {
		return nil, Errorf(ErrUnavailable, "the plugin has no database")
	}
	var schema string
	if err := rt.db.Pool.QueryRow(ctx, "SELECT current_schema()").Scan(&schema); err != nil {
		return nil, fmt.Errorf("reading the plugin's schema: %w", err)
	}
	return storage.ReadCatalog(ctx, rt.db.Pool, schema)
}

// personalPlan plans the manifest's data classes against the catalog.
func (rt *runtime) personalPlan(ctx context.Context) (*personalPlan, error) {
	cat, err := rt.catalog(ctx)
	if err != nil {
		return nil, err
	}
	plan := &personalPlan{catalog: cat}
	var errs []error
	for _, dc := range rt.classes {
		p, err := planClass(cat, dc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		plan.classes = append(plan.classes, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, p := range plan.classes {
		for _, o := range plan.classes {
			if o != p && o.Table == p.Table && p.Table != "" {
				for _, c := range o.Columns {
					p.others = append(p.others, c.Name)
				}
			}
		}
	}
	return plan, nil
}

func planClass(cat *storage.Catalog, dc DataClass) (*classPlan, error) {
	p := &classPlan{DataClass: dc}
	if dc.Subject == "" && dc.OnErase == "" {
		p.OnErase = Keep
	}
	if dc.Table == "" {
		return p, nil
	}
	where := fmt.Sprintf("data class %q", dc.Name)
	t := cat.Tables[dc.Table]
	if t == nil {
		return nil, fmt.Errorf("%s: schema %s has no table %q", where, cat.Schema, dc.Table)
	}
	p.table, p.pk = pgx.Identifier{cat.Schema, dc.Table}.Sanitize(), t.PrimaryKey
	if !t.TenantScoped() {
		p.genericErr = fmt.Errorf("%s: table %s has no tenant_id column, so the generic SQL could reach every institution's rows: give the class Export and Erase functions", where, dc.Table)
	}
	holder := t
	if th := dc.Through; th != nil {
		parent := cat.Tables[th.Table]
		switch {
		case parent == nil:
			return nil, fmt.Errorf("%s: schema %s has no table %q (through)", where, cat.Schema, th.Table)
		case t.Column(th.Column) == nil || parent.Column(th.Key) == nil:
			return nil, fmt.Errorf("%s: through %s.%s = %s.%s: no such column", where, dc.Table, th.Column, th.Table, th.Key)
		case !parent.TenantScoped() && p.genericErr == nil:
			p.genericErr = fmt.Errorf("%s: table %s (through) has no tenant_id column: give the class Export and Erase functions", where, th.Table)
		}
		p.parent, holder = pgx.Identifier{cat.Schema, th.Table}.Sanitize(), parent
	}
	if dc.Subject != "" {
		if p.subject = holder.Column(dc.Subject); p.subject == nil {
			return nil, fmt.Errorf("%s: table %s has no subject column %q", where, holder.Name, dc.Subject)
		}
		if c := p.subject.TypeClass(); c != "uuid" && c != "text" {
			p.genericErr = fmt.Errorf("%s: subject %s.%s is %s, not a uuid or text holding a user ID", where, holder.Name, dc.Subject, p.subject.Type)
		}
	}
	for _, pc := range dc.Columns {
		col := t.Column(pc.Name)
		if col == nil {
			return nil, fmt.Errorf("%s: table %s has no column %q", where, dc.Table, pc.Name)
		}
		c := planColumn{PersonalColumn: pc, col: col}
		if wire.IsReference(string(pc.Kind)) {
			if tc := col.TypeClass(); tc != "uuid" && tc != "text" || (pc.Kind == ActorRef && tc != "text") {
				p.genericErr = fmt.Errorf("%s: column %s.%s (%s) is %s, which cannot hold a user ID", where, dc.Table, pc.Name, pc.Kind, col.Type)
			}
			p.refs = append(p.refs, c)
			continue
		}
		if _, err := erasedValue(&stmt{}, c, "t"); err != nil && p.eraseErr == nil {
			p.eraseErr = fmt.Errorf("%s: %w", where, err)
		}
		p.personal = append(p.personal, c)
	}
	return p, nil
}

// checkPersonalData reports what keeps the generic SQL from the classes
// that rely on it: what a plugin's tests should find before production.
func (rt *runtime) checkPersonalData(ctx context.Context) error {
	if len(rt.classes) == 0 {
		return nil
	}
	plan, err := rt.personalPlan(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range plan.classes {
		switch {
		case p.genericErr != nil && (p.Export == nil || p.Erase == nil):
			errs = append(errs, p.genericErr)
		case p.eraseErr != nil && p.Erase == nil:
			errs = append(errs, p.eraseErr)
		}
	}
	return errors.Join(errs...)
}

// stmt collects a statement's arguments.
type stmt struct{ args []any }

// arg adds v and returns its placeholder.
func (s *stmt) arg(v any) string {
	s.args = append(s.args, v)
	return fmt.Sprintf("$%d", len(s.args))
}

func qi(name string) string { return pgx.Identifier{name}.Sanitize() }

// idMatch is the condition "column names the person" (user: the text
// placeholder of their ID).
func idMatch(alias string, col *storage.Column, name string, actor bool, user string) string {
	c := alias + "." + qi(name)
	switch {
	case actor:
		return c + " = 'user:' || " + user + "::text"
	case col.TypeClass() == "uuid":
		return c + " = " + user + "::text::uuid"
	}
	return c + " = " + user + "::text"
}

// idValue is the pseudonym as the column writes an ID.
func idValue(col *storage.Column, actor bool, pseudonym string) string {
	switch {
	case actor:
		return "'user:' || " + pseudonym + "::text"
	case col.TypeClass() == "uuid":
		return pseudonym + "::text::uuid"
	}
	return pseudonym + "::text"
}

// subjectMatch is the condition "the row is the person's".
func (p *classPlan) subjectMatch(alias, user string) string {
	if th := p.Through; th != nil {
		return fmt.Sprintf("%s.%s IN (SELECT pt.%s FROM %s pt WHERE %s)",
			alias, qi(th.Column), qi(th.Key), p.parent, idMatch("pt", p.subject, p.Subject, false, user))
	}
	return idMatch(alias, p.subject, p.Subject, false, user)
}

// refsMatch is the condition "a reference column names the person".
func (p *classPlan) refsMatch(alias, user string) string {
	conds := make([]string, len(p.refs))
	for i, r := range p.refs {
		conds[i] = idMatch(alias, r.col, r.Name, r.Kind == ActorRef, user)
	}
	return "(" + strings.Join(conds, " OR ") + ")"
}

// erasedValue is what Anonymise writes into a personal column of the row
// aliased alias.
func erasedValue(s *stmt, c planColumn, alias string) (string, error) {
	col := c.col
	if !col.NotNull {
		return "NULL", nil
	}
	if c.Token != "" {
		return fmt.Sprintf("CAST(%s::text AS %s)", s.arg(c.Token), col.Type), nil
	}
	switch col.TypeClass() {
	case "text":
		return s.arg(ErasedText) + "::text", nil
	case "json":
		fn := "jsonb_typeof"
		if col.Type == "json" {
			fn = "json_typeof"
		}
		return fmt.Sprintf("CASE %[1]s(%[2]s.%[3]s) WHEN 'array' THEN '[]'::%[4]s WHEN 'object' THEN '{}'::%[4]s ELSE 'null'::%[4]s END",
			fn, alias, qi(c.Name), col.Type), nil
	case "array":
		return fmt.Sprintf("CAST('{}' AS %s)", col.Type), nil
	case "uuid":
		return "'00000000-0000-0000-0000-000000000000'::uuid", nil
	}
	return "", fmt.Errorf("column %s is NOT NULL %s: give it a Token, or let it be NULL", c.Name, col.Type)
}
