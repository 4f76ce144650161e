package plugintest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/storage"
)

// checkPersonalData is the coverage check New runs, as Moodle's privacy
// provider test does: every table and column a data class names exists,
// every column that looks personal (storage.Suspects: its name, its
// comment, free text beside a person's ID) is described or listed as not
// personal, and the SDK's generic SQL can run on the classes that rely on
// it.
func (h *Harness) checkPersonalData(ctx context.Context) error {
	cat, err := storage.ReadCatalog(ctx, h.admin, h.spec.Schema())
	if err != nil {
		return err
	}
	errs := []error{storage.CheckPersonalData(cat, h.wire.GetPersonalData())}
	if err := h.rt.CheckPersonalData(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Export is a person's export as the kernel receives it from the plugin,
// checked: every line a JSON object, every file's rows, size and SHA-256
// as the closing manifest says.
//
// Since: v1.2
type Export struct {
	// Files holds each file's lines, decoded, by file name:
	// "enrolments.jsonl", "submissions.references.jsonl".
	Files map[string][]map[string]any
	// Objects holds the person's objects from the plugin's storage, by
	// key (the export's files objects/<key>).
	Objects map[string][]byte
	// Manifest is the export's closing message: every file, empty ones
	// included.
	Manifest []ExportFile
	raw      bytes.Buffer
}

// ExportFile is one file of an Export's manifest.
type ExportFile struct {
	File, Class, Table string
	Rows, Bytes        uint64
	SHA256             string
}

// Rows are the person's rows of a data class.
func (e *Export) Rows(class string) []map[string]any { return e.Files[class+".jsonl"] }

// References are the rows of others of a data class that name the person.
func (e *Export) References(class string) []map[string]any {
	return e.Files[class+".references.jsonl"]
}

// Empty reports whether the export holds no line at all.
func (e *Export) Empty() bool { return e.raw.Len() == 0 }

// Text is every line and object of the export, as sent.
func (e *Export) Text() string { return e.raw.String() }

// ExportPersonalData exports what the plugin holds about userID in
// institution tenantID, through the code path of a served plugin, and
// checks the stream as the kernel would (a file the manifest does not
// list, a count or hash that does not match, a stream without its
// manifest fail the test).
//
// Since: v1.2
func (h *Harness) ExportPersonalData(t testing.TB, tenantID, userID string) *Export {
	t.Helper()
	out, err := h.export(tenantID, userID)
	if err != nil {
		t.Fatalf("plugintest: exporting the personal data of %s in %s: %v", userID, tenantID, err)
	}
	return out
}

func (h *Harness) export(tenantID, userID string) (*Export, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := &Export{Files: map[string][]map[string]any{}, Objects: map[string][]byte{}}
	type got struct {
		data   bytes.Buffer
		binary bool // objects/<key>: sent as data, not lines
	}
	files := map[string]*got{}
	var manifest *pluginv1.PersonalDataExportManifest
	err := h.rt.ExportPersonalData(ctx, &pluginv1.PersonalDataExportRequest{
		TenantId: tenantID, UserId: userID, RequestId: "plugintest-export", DeadlineUnixMs: deadline(ctx),
	}, func(c *pluginv1.PersonalDataExportChunk) error {
		switch {
		case manifest != nil:
			return errors.New("a message after the manifest")
		case c.Manifest != nil:
			manifest = c.Manifest
			return nil
		case c.File == "":
			return errors.New("a message names no file")
		}
		g := files[c.File]
		if g == nil {
			g = &got{binary: len(c.Data) > 0}
			files[c.File] = g
		}
		if g.binary != (len(c.Data) > 0) || (len(c.Data) > 0 && len(c.Jsonl) > 0) {
			return fmt.Errorf("file %s is sent both as JSON lines and as data", c.File)
		}
		g.data.Write(c.Jsonl)
		g.data.Write(c.Data)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if manifest == nil {
		return nil, errors.New("the stream ended without its manifest")
	}
	listed := map[string]bool{}
	for _, f := range manifest.Files {
		if listed[f.File] {
			return nil, fmt.Errorf("the manifest lists %s twice", f.File)
		}
		listed[f.File] = true
		g := files[f.File]
		if g == nil {
			g = &got{}
		}
		sum := sha256.Sum256(g.data.Bytes())
		if n := uint64(g.data.Len()); n != f.Bytes || hex.EncodeToString(sum[:]) != f.Sha256 {
			return nil, fmt.Errorf("%s: the manifest says %d bytes with SHA-256 %s; the stream sent %d bytes with %x", f.File, f.Bytes, f.Sha256, n, sum)
		}
		out.Manifest = append(out.Manifest, ExportFile{File: f.File, Class: f.Class, Table: f.Table, Rows: f.Rows, Bytes: f.Bytes, SHA256: f.Sha256})
		out.raw.Write(g.data.Bytes())
		if key, ok := strings.CutPrefix(f.File, "objects/"); ok && (g.binary || g.data.Len() == 0) {
			if f.Rows != 0 {
				return nil, fmt.Errorf("%s: an object has no rows, the manifest says %d", f.File, f.Rows)
			}
			out.Objects[key] = bytes.Clone(g.data.Bytes())
			continue
		}
		if g.binary {
			return nil, fmt.Errorf("%s: sent as data, but only objects/<key> files are", f.File)
		}
		lines := []map[string]any{}
		for _, line := range bytes.SplitAfter(g.data.Bytes(), []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			if line[len(line)-1] != '\n' {
				return nil, fmt.Errorf("%s: the last line has no newline", f.File)
			}
			var v map[string]any
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.UseNumber()
			if err := dec.Decode(&v); err != nil || v == nil {
				return nil, fmt.Errorf("%s: a line is not a JSON object: %s", f.File, line)
			}
			lines = append(lines, v)
		}
		if uint64(len(lines)) != f.Rows {
			return nil, fmt.Errorf("%s: the manifest says %d rows; the stream sent %d", f.File, f.Rows, len(lines))
		}
		out.Files[f.File] = lines
	}
	for name := range files {
		if !listed[name] {
			return nil, fmt.Errorf("file %s was sent but the manifest does not list it", name)
		}
	}
	return out, nil
}

func deadline(ctx context.Context) int64 {
	d, _ := ctx.Deadline()
	return d.UnixMilli()
}

// Count is what an erasure changed (or would) in one table, for one data
// class ("" for an institution's erasure).
//
// Since: v1.2
type Count struct {
	Class, Table                    string
	Deleted, Anonymised, References int64
	// Objects deleted from the plugin's storage.
	Objects int64
}

// Counts are an erasure's counts, in the order the plugin reported them.
//
// Since: v1.2
type Counts []Count

// Of is the count of a data class.
func (c Counts) Of(class string) Count {
	for _, n := range c {
		if n.Class == class {
			return n
		}
	}
	return Count{Class: class}
}

// Table is the count of a table, summed over its classes.
func (c Counts) Table(table string) Count {
	out := Count{Table: table}
	for _, n := range c {
		if n.Table == table {
			out.Deleted += n.Deleted
			out.Anonymised += n.Anonymised
			out.References += n.References
			out.Objects += n.Objects
		}
	}
	return out
}

// Total is every row deleted and anonymised, every reference replaced and
// every object deleted.
func (c Counts) Total() int64 {
	var out int64
	for _, n := range c {
		out += n.Deleted + n.Anonymised + n.References + n.Objects
	}
	return out
}

func counts(in []*pluginv1.ErasureCount) Counts {
	out := Counts{}
	for _, c := range in {
		out = append(out, Count{Class: c.Class, Table: c.Table, Deleted: int64(c.Deleted), Anonymised: int64(c.Anonymised),
			References: int64(c.References), Objects: int64(c.Objects)})
	}
	return out
}

// ErasePersonalData erases userID's data in institution tenantID through
// the code path of a served plugin and returns what changed. It then
// checks what the kernel relies on, failing the test otherwise: an export
// of the person now holds nothing, and a second erasure would change
// nothing (erasure is idempotent).
//
// Since: v1.2
func (h *Harness) ErasePersonalData(t testing.TB, tenantID, userID string) Counts {
	t.Helper()
	out := h.erase(t, tenantID, userID, false)
	if again := h.erase(t, tenantID, userID, true); again.Total() != 0 {
		t.Errorf("plugintest: erasure is not idempotent: after erasing %s, a second erasure would change %+v", userID, again)
	}
	ex, err := h.export(tenantID, userID)
	if err != nil {
		t.Fatalf("plugintest: exporting after the erasure: %v", err)
	}
	for _, f := range ex.Manifest {
		if f.Rows > 0 {
			t.Errorf("plugintest: after erasing %s, the export still holds %d rows in %s: %v", userID, f.Rows, f.File, ex.Files[f.File])
		}
	}
	for key := range ex.Objects {
		t.Errorf("plugintest: after erasing %s, the export still holds their object %s", userID, key)
	}
	return out
}

// ErasePersonalDataDryRun is what ErasePersonalData would change, changing
// nothing.
//
// Since: v1.2
func (h *Harness) ErasePersonalDataDryRun(t testing.TB, tenantID, userID string) Counts {
	t.Helper()
	return h.erase(t, tenantID, userID, true)
}

func (h *Harness) erase(t testing.TB, tenantID, userID string, dryRun bool) Counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.rt.ErasePersonalData(ctx, &pluginv1.PersonalDataEraseRequest{
		TenantId: tenantID, UserId: userID, DryRun: dryRun, RequestId: "plugintest-erase", DeadlineUnixMs: deadline(ctx),
	})
	if err != nil {
		t.Fatalf("plugintest: erasing the personal data of %s in %s (dry run %v): %v", userID, tenantID, dryRun, err)
	}
	return counts(out.Counts)
}

// EraseTenant erases everything the plugin holds for institution
// tenantID, as the kernel does when it offboards one, and returns the rows
// deleted per table. It then checks that no table with a tenant_id holds a
// row of the institution (the outbox aside, which is the kernel's to
// empty) and that a second erasure would delete nothing.
//
// Since: v1.2
func (h *Harness) EraseTenant(t testing.TB, tenantID string) Counts {
	t.Helper()
	out := h.eraseTenant(t, tenantID, false)
	if again := h.eraseTenant(t, tenantID, true); again.Total() != 0 {
		t.Errorf("plugintest: after erasing institution %s, a second erasure would delete %+v", tenantID, again)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cat, err := storage.ReadCatalog(ctx, h.admin, h.spec.Schema())
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	for _, name := range cat.Names() {
		if !cat.Tables[name].TenantScoped() || name == storage.Outbox {
			continue
		}
		var n int
		q := "SELECT count(*) FROM " + pgx.Identifier{cat.Schema, name}.Sanitize() + " WHERE tenant_id = $1"
		if err := h.admin.QueryRow(ctx, q, tenantID).Scan(&n); err != nil {
			t.Fatalf("plugintest: %v", err)
		}
		if n > 0 {
			t.Errorf("plugintest: after erasing institution %s, table %s still holds %d of its rows", tenantID, name, n)
		}
	}
	if h.hasStorage() {
		page, err := h.Storage(tenantID).List(ctx, "", "", 10)
		if err != nil {
			t.Fatalf("plugintest: listing the institution's objects: %v", err)
		}
		for _, o := range page.Objects {
			t.Errorf("plugintest: after erasing institution %s, its object %s is still stored", tenantID, o.Key)
		}
	}
	return out
}

func (h *Harness) hasStorage() bool {
	for _, c := range h.manifest.Capabilities {
		if c == sdk.CapStorage {
			return true
		}
	}
	return false
}

// EraseTenantDryRun is what EraseTenant would delete, deleting nothing.
//
// Since: v1.2
func (h *Harness) EraseTenantDryRun(t testing.TB, tenantID string) Counts {
	t.Helper()
	return h.eraseTenant(t, tenantID, true)
}

func (h *Harness) eraseTenant(t testing.TB, tenantID string, dryRun bool) Counts {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := h.rt.EraseTenantData(ctx, &pluginv1.ErasureTenantRequest{
		TenantId: tenantID, DryRun: dryRun, RequestId: "plugintest-erase-tenant", DeadlineUnixMs: deadline(ctx),
	})
	if err != nil {
		t.Fatalf("plugintest: erasing institution %s (dry run %v): %v", tenantID, dryRun, err)
	}
	return counts(out.Counts)
}

// Trace is where a value was found: a column of a table of the plugin's
// schema, in how many rows, of which institutions.
//
// Since: v1.2
type Trace struct {
	Value, Table, Column string
	// Object is the stored object the value was found in (its path or its
	// content), for a trace in the plugin's storage rather than a table.
	Object string
	Rows   int
	// Tenants are the institutions of those rows; nil for a table without
	// a tenant_id.
	Tenants []string
}

func (tr Trace) String() string {
	if tr.Object != "" {
		return fmt.Sprintf("%q in object %s", tr.Value, tr.Object)
	}
	s := fmt.Sprintf("%q in %s.%s (%d rows", tr.Value, tr.Table, tr.Column, tr.Rows)
	if tr.Tenants != nil {
		s += " of institutions " + strings.Join(tr.Tenants, ", ")
	}
	return s + ")"
}

// FindTraces scans every column of every table of the plugin's schema, of
// every institution, as text (a uuid, a JSON document, an array included),
// and every object of the plugin's storage (its key and its content), for
// each value, case-insensitively, and lists where it is found. The outbox
// is left out: the kernel relays its events away, and erases its own
// copies.
//
// Since: v1.2
func (h *Harness) FindTraces(t testing.TB, values ...string) []Trace {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cat, err := storage.ReadCatalog(ctx, h.admin, h.spec.Schema())
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	var out []Trace
	for _, name := range cat.Names() {
		if name == storage.Outbox || name == "edulure_migrations" {
			continue
		}
		table := cat.Tables[name]
		q := pgx.Identifier{cat.Schema, name}.Sanitize()
		tenants := "NULL::text[]"
		if table.TenantScoped() {
			tenants = "array_agg(DISTINCT tenant_id::text ORDER BY tenant_id::text)"
		}
		for _, col := range table.Columns {
			for _, v := range values {
				if v == "" {
					continue
				}
				tr := Trace{Value: v, Table: name, Column: col.Name}
				sql := fmt.Sprintf("SELECT count(*), %s FROM %s WHERE strpos(lower(%s::text), lower($1)) > 0", tenants, q, pgx.Identifier{col.Name}.Sanitize())
				if err := h.admin.QueryRow(ctx, sql, v).Scan(&tr.Rows, &tr.Tenants); err != nil {
					t.Fatalf("plugintest: scanning %s.%s: %v", name, col.Name, err)
				}
				if tr.Rows > 0 {
					out = append(out, tr)
				}
			}
		}
	}
	out = append(out, h.objectTraces(t, values)...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Value < out[j].Value })
	return out
}

// objectTraces scans the plugin's stored objects: each key (with its
// institution) and content.
func (h *Harness) objectTraces(t testing.TB, values []string) []Trace {
	t.Helper()
	if h.objects == nil {
		return nil
	}
	root := filepath.Join(h.objects.dir, "plugins", h.manifest.Name)
	var out []Trace
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".attrs") {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		content, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var tenants []string
		if parts := strings.Split(filepath.ToSlash(rel), "/"); len(parts) > 1 && parts[0] == "tenants" {
			tenants = []string{parts[1]}
		}
		for _, v := range values {
			lv := strings.ToLower(v)
			if v != "" && (strings.Contains(strings.ToLower(rel), lv) || bytes.Contains(bytes.ToLower(content), []byte(lv))) {
				out = append(out, Trace{Value: v, Object: filepath.ToSlash(rel), Rows: 1, Tenants: tenants})
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("plugintest: scanning the plugin's objects: %v", err)
	}
	return out
}

// RequireNoTrace fails the test if any value is found anywhere in the
// plugin's schema (FindTraces), naming each table and column: after a
// person's erasure, their user ID, email address and name must be gone.
//
// Since: v1.2
func (h *Harness) RequireNoTrace(t testing.TB, values ...string) {
	t.Helper()
	if traces := h.FindTraces(t, values...); len(traces) > 0 {
		lines := make([]string, len(traces))
		for i, tr := range traces {
			lines[i] = "  " + tr.String()
		}
		t.Fatalf("plugintest: traces left in plugin %q's tables:\n%s", h.manifest.Name, strings.Join(lines, "\n"))
	}
}
