package storage

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Catalog is what Postgres says about the tables of one schema: their
// columns, keys and foreign keys. The SDK plans a plugin's export and
// erasure from it, and the personal data coverage check reads it.
type Catalog struct {
	Schema string
	Tables map[string]*Table
}

// Table is one table of a Catalog.
type Table struct {
	Name    string
	Columns []*Column // in their order in the table
	// PrimaryKey names the primary key's columns; nil without one.
	PrimaryKey []string
	// Parents are the other tables of the schema this one's foreign keys
	// refer to.
	Parents []string
}

// Column is one column of a Table.
type Column struct {
	Name string
	// Type is the column's type as format_type writes it ("text",
	// "character varying(200)", "jsonb", "uuid", "text[]").
	Type    string
	NotNull bool
	// Comment is the column's COMMENT, "" without one.
	Comment string
	// Constrained is set when a CHECK on this column alone limits it to a
	// list of values (IN, = ANY) or a pattern (~): not free text.
	Constrained bool
}

// Querier is what ReadCatalog reads with: a pool, a connection or a
// transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// ReadCatalog reads the tables of schema (ordinary and partitioned).
func ReadCatalog(ctx context.Context, q Querier, schema string) (*Catalog, error) {
	c := &Catalog{Schema: schema, Tables: map[string]*Table{}}
	rows, err := q.Query(ctx, `
		SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
		       coalesce(col_description(c.oid, a.attnum), '')
		FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace
		JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition
		ORDER BY c.relname, a.attnum`, schema)
	if err != nil {
		return nil, fmt.Errorf("reading the columns of schema %s: %w", schema, err)
	}
	for rows.Next() {
		var table string
		col := &Column{}
		if err := rows.Scan(&table, &col.Name, &col.Type, &col.NotNull, &col.Comment); err != nil {
			return nil, err
		}
		t := c.Tables[table]
		if t == nil {
			t = &Table{Name: table}
			c.Tables[table] = t
		}
		t.Columns = append(t.Columns, col)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the columns of schema %s: %w", schema, err)
	}
	rows, err = q.Query(ctx, `
		SELECT c.relname, k.contype::text, coalesce(p.relname, ''), pg_get_constraintdef(k.oid),
		       ARRAY(SELECT a.attname::text FROM unnest(k.conkey) WITH ORDINALITY AS u(attnum, ord)
		             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.attnum ORDER BY u.ord)
		FROM pg_constraint k
		JOIN pg_class c ON c.oid = k.conrelid
		JOIN pg_namespace n ON n.oid = c.relnamespace
		LEFT JOIN pg_class p ON p.oid = k.confrelid AND p.relnamespace = c.relnamespace
		WHERE n.nspname = $1 AND k.contype IN ('p', 'f', 'c')
		ORDER BY c.relname, k.conname`, schema)
	if err != nil {
		return nil, fmt.Errorf("reading the constraints of schema %s: %w", schema, err)
	}
	for rows.Next() {
		var table, kind, parent, def string
		var cols []string
		if err := rows.Scan(&table, &kind, &parent, &def, &cols); err != nil {
			return nil, err
		}
		t := c.Tables[table]
		if t == nil {
			continue
		}
		switch kind {
		case "p":
			t.PrimaryKey = cols
		case "f":
			if parent != "" && parent != table && !contains(t.Parents, parent) {
				t.Parents = append(t.Parents, parent)
			}
		case "c":
			if len(cols) == 1 && limitsValues(def) {
				if col := t.Column(cols[0]); col != nil {
					col.Constrained = true
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the constraints of schema %s: %w", schema, err)
	}
	return c, nil
}

// limitsValues reports whether a CHECK's definition limits its column to a
// list of values or a pattern.
func limitsValues(def string) bool {
	return strings.Contains(def, "= ANY (ARRAY[") || strings.Contains(def, " IN (") ||
		(strings.Contains(def, " ~ ") || strings.Contains(def, " ~* "))
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Names lists the catalog's tables in name order.
func (c *Catalog) Names() []string {
	out := make([]string, 0, len(c.Tables))
	for name := range c.Tables {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// Column returns the table's column name, or nil.
func (t *Table) Column(name string) *Column {
	for _, c := range t.Columns {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// TenantScoped reports whether the table has a tenant_id column, which
// Provision puts under row-level security.
func (t *Table) TenantScoped() bool { return t.Column("tenant_id") != nil }

// DeleteOrder lists the tenant-scoped tables of the catalog that the
// plugin's role may delete from (not the outbox, which is the kernel's to
// empty) in an order foreign keys allow: a table before the tables it
// refers to. Tables in a cycle of foreign keys come last, by name.
func (c *Catalog) DeleteOrder() []string {
	var tables []string
	for _, name := range c.Names() {
		if c.Tables[name].TenantScoped() && name != Outbox {
			tables = append(tables, name)
		}
	}
	// children[p]: the tables referring to p, which go first.
	children := map[string]int{}
	for _, name := range tables {
		for _, p := range c.Tables[name].Parents {
			children[p]++
		}
	}
	var out []string
	done := map[string]bool{}
	for len(out) < len(tables) {
		progressed := false
		for _, name := range tables {
			if done[name] || children[name] > 0 {
				continue
			}
			done[name], progressed = true, true
			out = append(out, name)
			for _, p := range c.Tables[name].Parents {
				children[p]--
			}
		}
		if !progressed { // a cycle: the rest by name
			for _, name := range tables {
				if !done[name] {
					done[name] = true
					out = append(out, name)
				}
			}
		}
	}
	return out
}

// TypeClass sorts a column's type into what erasure and the coverage check
// tell apart: "array" (any array), "text" (text, varchar, char, citext),
// "json" (json, jsonb), "uuid" or "other".
func (col *Column) TypeClass() string {
	if strings.HasSuffix(col.Type, "[]") {
		return "array"
	}
	return baseClass(col.Type)
}

// Textual reports whether the column can hold free text: text, JSON, or an
// array of text.
func (col *Column) Textual() bool {
	switch col.TypeClass() {
	case "text", "json":
		return true
	case "array":
		return baseClass(strings.TrimSuffix(col.Type, "[]")) == "text"
	}
	return false
}

func baseClass(t string) string {
	switch {
	case t == "text" || t == "citext" || t == "name" || t == "character" || t == "\"char\"" ||
		strings.HasPrefix(t, "character varying") || strings.HasPrefix(t, "character("):
		return "text"
	case t == "json" || t == "jsonb":
		return "json"
	case t == "uuid":
		return "uuid"
	}
	return "other"
}
