package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

const (
	// eraseBatch is the most rows one transaction of a person's erasure
	// changes; tenantBatch of an institution's.
	eraseBatch  = 1000
	tenantBatch = 5000
	// exportChunk is the size past which an export message is sent.
	exportChunk = 256 << 10
)

// personIDs checks the IDs of a personal data call: UUIDs, as the
// kernel's always are.
func personIDs(tenant, user string) (string, string, error) {
	t, ok := NormalizeUUID(tenant)
	if !ok {
		return "", "", Errorf(ErrInvalid, "tenant_id %q is not a UUID", tenant)
	}
	if user == "" {
		return t, "", nil
	}
	u, ok := NormalizeUUID(user)
	if !ok {
		return "", "", Errorf(ErrInvalid, "user_id %q is not a UUID", user)
	}
	return t, u, nil
}

// hook runs a plugin's export or erase function, turning a panic into an
// error.
func (rt *runtime) hook(what string, fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			rt.logger.Error("personal data hook panicked", "hook", what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = fmt.Errorf("%s panicked: %v", what, v)
		}
	}()
	return fn()
}

// exportPersonalData streams one person's data: every class's files, then
// the manifest.
func (rt *runtime) exportPersonalData(ctx context.Context, in *pluginv1.PersonalDataExportRequest, send func(*pluginv1.PersonalDataExportChunk) error) error {
	tenant, user, err := personIDs(in.TenantId, in.UserId)
	if err != nil {
		return err
	}
	if user == "" {
		return Errorf(ErrInvalid, "user_id is required")
	}
	w := &exportWriter{send: send, files: map[string]*exportFile{}}
	if len(rt.classes) > 0 {
		plan, err := rt.personalPlan(ctx)
		if err != nil {
			return err
		}
		for _, p := range plan.classes {
			if p.Table != "" {
				w.open(p.rowsFile(), p)
				if len(p.refs) > 0 {
					w.open(p.refsFile(), p)
				}
			}
			if p.Export != nil {
				x := &PersonalExport{TenantID: tenant, UserID: user, rt: rt, class: p, w: w}
				err = rt.hook("export of data class "+p.Name, func() error { return p.Export(ctx, x) })
			} else {
				err = rt.exportClass(ctx, p, tenant, user, w)
			}
			if err != nil {
				return fmt.Errorf("exporting data class %q: %w", p.Name, err)
			}
		}
	}
	return w.finish()
}

// exportClass is the generic export of a class: the person's rows, and the
// rows of others that name them.
func (rt *runtime) exportClass(ctx context.Context, p *classPlan, tenant, user string, w *exportWriter) error {
	if p.Objects != "" {
		if err := rt.exportObjects(ctx, p, tenant, user, w); err != nil {
			return err
		}
	}
	if p.Table == "" {
		return nil
	}
	if p.genericErr != nil {
		return p.genericErr
	}
	order := ""
	if len(p.pk) > 0 {
		cols := make([]string, len(p.pk))
		for i, c := range p.pk {
			cols[i] = "s." + qi(c)
		}
		order = " ORDER BY " + strings.Join(cols, ", ")
	}
	return rt.tx(ctx, tenant, func(tx pgx.Tx) error {
		if p.Subject != "" {
			s := &stmt{}
			u := s.arg(user)
			err := eachRow(ctx, tx, "SELECT to_jsonb(s) FROM "+p.table+" s WHERE "+p.subjectMatch("s", u)+order, s.args, func(row map[string]any) error {
				delete(row, "tenant_id")
				for _, c := range p.others {
					delete(row, c) // the other class's to export
				}
				for _, r := range p.refs {
					if !names(row[r.Name], user, r.Kind == ActorRef) {
						row[r.Name] = nil // someone else
					}
				}
				return w.line(p.rowsFile(), p, row)
			})
			if err != nil {
				return err
			}
		}
		if len(p.refs) == 0 {
			return nil
		}
		s := &stmt{}
		u := s.arg(user)
		where := p.refsMatch("s", u)
		if p.Subject != "" {
			where += " AND NOT (" + p.subjectMatch("s", u) + ")"
		}
		return eachRow(ctx, tx, "SELECT to_jsonb(s) FROM "+p.table+" s WHERE "+where+order, s.args, func(row map[string]any) error {
			out := map[string]any{}
			for _, c := range p.pk {
				out[c] = row[c]
			}
			for _, r := range p.refs {
				if names(row[r.Name], user, r.Kind == ActorRef) {
					out[r.Name] = row[r.Name]
				}
			}
			return w.line(p.refsFile(), p, out)
		})
	})
}

// personPrefix is the class's object prefix for the person.
func (p *classPlan) personPrefix(user string) string {
	return strings.ReplaceAll(p.Objects, "{user_id}", user)
}

// exportObjects adds the person's objects of the class to the export, as
// files objects/<key>, streamed.
func (rt *runtime) exportObjects(ctx context.Context, p *classPlan, tenant, user string, w *exportWriter) error {
	b := rt.bucket(&pluginv1.BlobScope{TenantId: tenant})
	return eachObject(ctx, b, p.personPrefix(user), func(o Object) error {
		r, _, err := b.Get(ctx, o.Key)
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil // deleted meanwhile
			}
			return fmt.Errorf("reading object %s: %w", o.Key, err)
		}
		defer r.Close()
		return w.data("objects/"+o.Key, p.Name, r)
	})
}

// eachObject calls fn for each object under prefix, a page at a time.
func eachObject(ctx context.Context, b *Bucket, prefix string, fn func(Object) error) error {
	cursor := ""
	for {
		page, err := b.List(ctx, prefix, cursor, 1000)
		if err != nil {
			return fmt.Errorf("listing objects under %q: %w", prefix, err)
		}
		for _, o := range page.Objects {
			if err := fn(o); err != nil {
				return err
			}
		}
		if cursor = page.NextCursor; cursor == "" {
			return nil
		}
	}
}

// deleteObjects deletes the objects under prefix (with dryRun, counts
// them) and returns how many.
func deleteObjects(ctx context.Context, b *Bucket, prefix string, dryRun bool) (int64, error) {
	var n int64
	err := eachObject(ctx, b, prefix, func(o Object) error {
		if !dryRun {
			if err := b.Delete(ctx, o.Key); err != nil && !errors.Is(err, ErrNotFound) {
				return fmt.Errorf("deleting object %s: %w", o.Key, err)
			}
		}
		n++
		return nil
	})
	return n, err
}

// names reports whether a column's value names the person.
func names(v any, user string, actor bool) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	if actor {
		return strings.EqualFold(s, "user:"+user)
	}
	return strings.EqualFold(s, user)
}

func eachRow(ctx context.Context, tx pgx.Tx, sql string, args []any, fn func(map[string]any) error) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return err
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			return err
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return rows.Err()
}

// exportWriter turns lines into messages of at most about exportChunk
// bytes, one file at a time, and keeps each file's count and hash for the
// manifest.
type exportWriter struct {
	send  func(*pluginv1.PersonalDataExportChunk) error
	files map[string]*exportFile
	order []string
	buf   bytes.Buffer
	file  string // of buf
}

type exportFile struct {
	class, table string
	rows, bytes  uint64
	sum          hash.Hash
}

func (w *exportWriter) open(file string, p *classPlan) {
	if _, ok := w.files[file]; !ok {
		w.files[file] = &exportFile{class: p.Name, table: p.Table, sum: sha256.New()}
		w.order = append(w.order, file)
	}
}

func (w *exportWriter) line(file string, p *classPlan, v any) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("encoding a line of %s: %w", file, err)
	}
	if b.Len() == 0 || b.Bytes()[0] != '{' {
		return fmt.Errorf("a line of %s must be a JSON object, not %T", file, v)
	}
	w.open(file, p)
	if w.file != file && w.buf.Len() > 0 {
		if err := w.flush(); err != nil {
			return err
		}
	}
	f := w.files[file]
	f.rows++
	f.bytes += uint64(b.Len())
	f.sum.Write(b.Bytes())
	w.file = file
	w.buf.Write(b.Bytes())
	if w.buf.Len() >= exportChunk {
		return w.flush()
	}
	return nil
}

// data streams r as the content of file, a file that is not JSON lines.
func (w *exportWriter) data(file, class string, r io.Reader) error {
	if err := w.flush(); err != nil {
		return err
	}
	if _, ok := w.files[file]; !ok {
		w.files[file] = &exportFile{class: class, sum: sha256.New()}
		w.order = append(w.order, file)
	}
	f := w.files[file]
	buf := make([]byte, 64<<10)
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			f.bytes += uint64(n)
			f.sum.Write(buf[:n])
			if err := w.send(&pluginv1.PersonalDataExportChunk{File: file, Data: bytes.Clone(buf[:n])}); err != nil {
				return err
			}
		}
		switch {
		case err == io.EOF || err == io.ErrUnexpectedEOF:
			return nil
		case err != nil:
			return fmt.Errorf("reading %s: %w", file, err)
		}
	}
}

func (w *exportWriter) flush() error {
	if w.buf.Len() == 0 {
		return nil
	}
	chunk := &pluginv1.PersonalDataExportChunk{File: w.file, Jsonl: bytes.Clone(w.buf.Bytes())}
	w.buf.Reset()
	return w.send(chunk)
}

func (w *exportWriter) finish() error {
	if err := w.flush(); err != nil {
		return err
	}
	m := &pluginv1.PersonalDataExportManifest{}
	for _, name := range w.order {
		f := w.files[name]
		m.Files = append(m.Files, &pluginv1.PersonalDataExportFile{
			File: name, Class: f.class, Table: f.table, Rows: f.rows, Bytes: f.bytes, Sha256: hex.EncodeToString(f.sum.Sum(nil)),
		})
	}
	return w.send(&pluginv1.PersonalDataExportChunk{Manifest: m})
}

// erasureCount is one class's counts.
type erasureCount struct{ deleted, anonymised, references, objects int64 }

// erasePersonalData erases one person's data, class by class in the order
// declared.
func (rt *runtime) erasePersonalData(ctx context.Context, in *pluginv1.PersonalDataEraseRequest) (*pluginv1.PersonalDataEraseResponse, error) {
	tenant, user, err := personIDs(in.TenantId, in.UserId)
	if err != nil {
		return nil, err
	}
	if user == "" {
		return nil, Errorf(ErrInvalid, "user_id is required")
	}
	pseudonym := uuid.NewString()
	if in.Pseudonym != "" {
		var ok bool
		if pseudonym, ok = NormalizeUUID(in.Pseudonym); !ok || pseudonym == user {
			return nil, Errorf(ErrInvalid, "pseudonym %q must be a UUID other than the user's", in.Pseudonym)
		}
	}
	out := &pluginv1.PersonalDataEraseResponse{}
	if len(rt.classes) == 0 {
		return out, nil
	}
	plan, err := rt.personalPlan(ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range plan.classes {
		count := &erasureCount{}
		e := &PersonalErasure{TenantID: tenant, UserID: user, Pseudonym: pseudonym, DryRun: in.DryRun, rt: rt, class: p, count: count}
		if p.Erase != nil {
			err = rt.hook("erasure of data class "+p.Name, func() error { return p.Erase(ctx, e) })
		} else {
			err = rt.eraseClass(ctx, p, e, count)
		}
		if err != nil {
			return nil, fmt.Errorf("erasing data class %q: %w", p.Name, err)
		}
		out.Counts = append(out.Counts, &pluginv1.ErasureCount{
			Class: p.Name, Table: p.Table,
			Deleted: uint64(count.deleted), Anonymised: uint64(count.anonymised), References: uint64(count.references),
			Objects: uint64(count.objects),
		})
	}
	return out, nil
}

// eraseClass is the generic erasure of a class: the person's rows by its
// rule, then the references to them.
func (rt *runtime) eraseClass(ctx context.Context, p *classPlan, e *PersonalErasure, count *erasureCount) error {
	if p.Objects != "" {
		n, err := deleteObjects(ctx, rt.bucket(&pluginv1.BlobScope{TenantId: e.TenantID}), p.personPrefix(e.UserID), e.DryRun)
		count.objects += n
		if err != nil {
			return err
		}
	}
	if p.Table == "" {
		return nil
	}
	if p.genericErr != nil {
		return p.genericErr
	}
	if p.eraseErr != nil {
		return p.eraseErr
	}
	if p.Subject != "" {
		var n int64
		var err error
		switch p.OnErase {
		case Delete:
			n, err = rt.change(ctx, e, func(s *stmt, _ bool) (string, string, error) {
				return "DELETE FROM " + p.table + " t", p.subjectMatch("s", s.arg(e.UserID)), nil
			})
			count.deleted += n
		case Anonymise, Keep:
			if p.Through != nil && (p.OnErase == Keep || len(p.personal) == 0) {
				break // kept as they are, under a parent that is anonymised
			}
			n, err = rt.change(ctx, e, func(s *stmt, change bool) (string, string, error) {
				match := p.subjectMatch("s", s.arg(e.UserID))
				var sets, pending []string
				if change && p.Through == nil {
					sets = append(sets, qi(p.Subject)+" = "+idValue(p.subject, false, s.arg(e.Pseudonym)))
				}
				for _, c := range p.personal {
					if p.OnErase != Anonymise {
						break
					}
					if change {
						v, err := erasedValue(s, c, "t")
						if err != nil {
							return "", "", err
						}
						sets = append(sets, qi(c.Name)+" = "+v)
					}
					if p.Through != nil {
						// Through a parent, the rows still match once anonymised:
						// only those not anonymised yet.
						was, err := erasedValue(s, c, "s")
						if err != nil {
							return "", "", err
						}
						pending = append(pending, "s."+qi(c.Name)+" IS DISTINCT FROM "+was)
					}
				}
				if len(pending) > 0 {
					match += " AND (" + strings.Join(pending, " OR ") + ")"
				}
				return "UPDATE " + p.table + " t SET " + strings.Join(sets, ", "), match, nil
			})
			count.anonymised += n
		default:
			err = fmt.Errorf("data class %q: OnErase %q is not Delete, Anonymise or Keep", p.Name, p.OnErase)
		}
		if err != nil {
			return err
		}
	}
	for _, r := range p.refs {
		n, err := rt.change(ctx, e, func(s *stmt, change bool) (string, string, error) {
			u := s.arg(e.UserID)
			match := idMatch("s", r.col, r.Name, r.Kind == ActorRef, u)
			if !change {
				if p.OnErase == Delete && p.Subject != "" {
					match += " AND NOT (" + p.subjectMatch("s", u) + ")" // deleted first
				}
				return "", match, nil
			}
			return fmt.Sprintf("UPDATE %s t SET %s = %s", p.table, qi(r.Name), idValue(r.col, r.Kind == ActorRef, s.arg(e.Pseudonym))), match, nil
		})
		if err != nil {
			return err
		}
		count.references += n
	}
	return nil
}

// change changes the class's rows that build's match selects (an UPDATE
// or DELETE head of the table aliased t; a condition on it aliased s), in
// batches of eraseBatch rows, each in its own transaction, until none is
// left, and returns the rows changed; with DryRun it counts them. build
// is told whether the statement changes (else only match is used).
func (rt *runtime) change(ctx context.Context, e *PersonalErasure, build func(s *stmt, change bool) (head, match string, err error)) (int64, error) {
	s := &stmt{}
	head, match, err := build(s, !e.DryRun)
	if err != nil {
		return 0, err
	}
	from := e.class.table + " s WHERE " + match
	if e.DryRun {
		var n int64
		err := e.Tx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM "+from, s.args...).Scan(&n)
		})
		return n, err
	}
	sql := fmt.Sprintf("%s WHERE t.ctid = ANY(ARRAY(SELECT s.ctid FROM %s LIMIT %d))", head, from, eraseBatch)
	return rt.batches(ctx, e.TenantID, sql, s.args, eraseBatch)
}

// batches runs sql in its own transactions until it changes fewer than
// size rows.
func (rt *runtime) batches(ctx context.Context, tenant, sql string, args []any, size int64) (int64, error) {
	var total int64
	for {
		var n int64
		err := rt.tx(ctx, tenant, func(tx pgx.Tx) error {
			tag, err := tx.Exec(ctx, sql, args...)
			n = tag.RowsAffected()
			return err
		})
		total += n
		if err != nil || n < size {
			return total, err
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

// eraseTenantData erases everything the plugin holds for an institution:
// the plugin's TenantEraser first, then the rows of every tenant-scoped
// table, children before parents.
func (rt *runtime) eraseTenantData(ctx context.Context, in *pluginv1.ErasureTenantRequest) (*pluginv1.ErasureTenantResponse, error) {
	tenant, _, err := personIDs(in.TenantId, "")
	if err != nil {
		return nil, err
	}
	e := &TenantErasure{TenantID: tenant, DryRun: in.DryRun, rt: rt, counts: map[string]int64{}}
	if te, ok := rt.plugin.(TenantEraser); ok {
		if err := rt.hook("EraseTenant", func() error { return te.EraseTenant(ctx, e) }); err != nil {
			return nil, fmt.Errorf("erasing the institution: %w", err)
		}
	}
	out := &pluginv1.ErasureTenantResponse{}
	if rt.db != nil {
		cat, err := rt.catalog(ctx)
		if err != nil {
			return nil, err
		}
		for _, table := range cat.DeleteOrder() {
			q := pgx.Identifier{cat.Schema, table}.Sanitize()
			var n int64
			if in.DryRun {
				err = e.Tx(ctx, func(tx pgx.Tx) error { return tx.QueryRow(ctx, "SELECT count(*) FROM "+q).Scan(&n) })
			} else {
				n, err = rt.batches(ctx, tenant, fmt.Sprintf("DELETE FROM %[1]s WHERE ctid = ANY(ARRAY(SELECT ctid FROM %[1]s LIMIT %[2]d))", q, tenantBatch), nil, tenantBatch)
			}
			if err != nil {
				return nil, fmt.Errorf("erasing the institution's rows of table %s: %w", table, err)
			}
			e.Deleted(table, n)
		}
	}
	for _, t := range e.order {
		out.Counts = append(out.Counts, &pluginv1.ErasureCount{Table: t, Deleted: uint64(e.counts[t])})
	}
	if slices.Contains(rt.wire.Capabilities, string(CapStorage)) {
		n, err := deleteObjects(ctx, rt.bucket(&pluginv1.BlobScope{TenantId: tenant}), "", in.DryRun)
		if err != nil {
			return nil, fmt.Errorf("erasing the institution's objects: %w", err)
		}
		out.Counts = append(out.Counts, &pluginv1.ErasureCount{Objects: uint64(n)})
	}
	return out, nil
}

// isInvalid reports whether err is the caller's fault (a bad ID).
func isInvalid(err error) bool { return errors.Is(err, ErrInvalid) }
