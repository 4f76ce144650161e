package privacy

import (
	"archive/zip"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// BundleFormat names the layout of an export archive (docs/api.md, "Data
// exports"): a zip holding manifest.json and, under kernel/ and
// plugins/<name>/, each source's files.
const BundleFormat = "edulure-export-v1"

// BundleManifest is manifest.json, the archive's last file.
type BundleManifest struct {
	Format    string       `json:"format"`
	ExportID  string       `json:"export_id"`
	TenantID  string       `json:"tenant_id"`
	UserID    string       `json:"user_id,omitempty"` // "": an institution's export
	CreatedAt time.Time    `json:"created_at"`
	Parts     []ExportPart `json:"parts"`
	Files     []BundleFile `json:"files"`
}

// BundleFile is one file of an archive.
type BundleFile struct {
	Path   string `json:"path"`
	Source string `json:"source"` // "kernel" or a plugin's name
	Class  string `json:"class,omitempty"`
	Table  string `json:"table,omitempty"`
	Rows   uint64 `json:"rows"`
	Bytes  uint64 `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// ExportPart is one source's share of an export.
type ExportPart struct {
	Source  string `json:"source"`
	Version string `json:"version,omitempty"`
	Files   int    `json:"files"`
	Rows    uint64 `json:"rows"`
	Bytes   uint64 `json:"bytes"`
}

// bundle writes an archive to a temporary file, file by file, recording
// each one's rows, size and SHA-256.
type bundle struct {
	dir   string
	f     *os.File
	zw    *zip.Writer
	files []BundleFile
	parts map[string]*ExportPart
	order []string
}

func newBundle() (*bundle, error) {
	dir, err := os.MkdirTemp("", "edulure-export-")
	if err != nil {
		return nil, err
	}
	f, err := os.Create(path.Join(dir, "bundle.zip"))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &bundle{dir: dir, f: f, zw: zip.NewWriter(f), parts: map[string]*ExportPart{}}, nil
}

// close removes the temporary files.
func (b *bundle) close() {
	b.f.Close()
	os.RemoveAll(b.dir)
}

func (b *bundle) part(source, version string) *ExportPart {
	p := b.parts[source]
	if p == nil {
		p = &ExportPart{Source: source, Version: version}
		b.parts[source] = p
		b.order = append(b.order, source)
	}
	return p
}

// counter counts what passes through it.
type counter struct {
	h     hash.Hash
	bytes uint64
	lines uint64
}

func (c *counter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.bytes += uint64(len(p))
	c.lines += uint64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// write adds the file at p to the archive with what fn writes to it; for
// JSON lines the rows are the lines.
func (b *bundle) write(p, source, version, class, table string, fn func(w io.Writer) error) error {
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: p, Method: zip.Deflate, Modified: time.Now().UTC()})
	if err != nil {
		return err
	}
	c := &counter{h: sha256.New()}
	bw := bufio.NewWriterSize(io.MultiWriter(w, c), 64<<10)
	if err := fn(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	f := BundleFile{Path: p, Source: source, Class: class, Table: table, Bytes: c.bytes, SHA256: hex.EncodeToString(c.h.Sum(nil))}
	if strings.HasSuffix(p, ".jsonl") && !strings.Contains(p, "objects/") {
		f.Rows = c.lines
	}
	b.files = append(b.files, f)
	pt := b.part(source, version)
	pt.Files++
	pt.Rows += f.Rows
	pt.Bytes += f.Bytes
	return nil
}

// jsonl is a writer of JSON lines.
type jsonl struct {
	w   io.Writer
	enc *json.Encoder
}

func newJSONL(w io.Writer) *jsonl {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &jsonl{w: w, enc: enc}
}

func (j *jsonl) line(v any) error { return j.enc.Encode(v) }

// finish writes manifest.json and closes the archive; it returns the
// manifest and the archive's size and SHA-256.
func (b *bundle) finish(m BundleManifest) (BundleManifest, int64, string, error) {
	m.Format = BundleFormat
	m.Files = b.files
	if m.Files == nil {
		m.Files = []BundleFile{}
	}
	m.Parts = b.exportParts()
	w, err := b.zw.CreateHeader(&zip.FileHeader{Name: "manifest.json", Method: zip.Deflate, Modified: time.Now().UTC()})
	if err != nil {
		return m, 0, "", err
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return m, 0, "", err
	}
	if err := b.zw.Close(); err != nil {
		return m, 0, "", err
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return m, 0, "", err
	}
	h := sha256.New()
	n, err := io.Copy(h, b.f)
	if err != nil {
		return m, 0, "", err
	}
	if _, err := b.f.Seek(0, io.SeekStart); err != nil {
		return m, 0, "", err
	}
	return m, n, hex.EncodeToString(h.Sum(nil)), nil
}

func (b *bundle) exportParts() []ExportPart {
	out := make([]ExportPart, 0, len(b.order))
	for _, s := range b.order {
		out = append(out, *b.parts[s])
	}
	return out
}

// pluginFile is one file of a plugin's export stream, spooled to disk
// until the stream's manifest vouches for it.
type pluginFile struct {
	name   string
	f      *os.File
	c      counter
	binary bool // objects/<key>: sent as data, not lines
}

// exportFileName is the form of a plugin export's JSON lines files.
var exportFileName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}(\.references)?\.jsonl$`)

// pluginExport receives a plugin's ExportPersonalData stream, checks it
// against its closing manifest (every file listed, with the rows, size and
// SHA-256 received; nothing sent that it does not list; the manifest
// last) and adds its files to the archive under plugins/<name>/.
type pluginExport struct {
	b        *bundle
	plugin   string
	version  string
	dir      string
	files    map[string]*pluginFile
	manifest *pluginv1.PersonalDataExportManifest
}

func (b *bundle) pluginExport(plugin, version string) (*pluginExport, error) {
	dir, err := os.MkdirTemp(b.dir, plugin+"-")
	if err != nil {
		return nil, err
	}
	return &pluginExport{b: b, plugin: plugin, version: version, dir: dir, files: map[string]*pluginFile{}}, nil
}

func (x *pluginExport) close() {
	for _, f := range x.files {
		f.f.Close()
	}
	os.RemoveAll(x.dir)
}

func checkExportFile(name string) error {
	if key, ok := strings.CutPrefix(name, "objects/"); ok {
		if err := blobstore.CheckKey(key); err != nil {
			return fmt.Errorf("the export names a file %q: %w", name, err)
		}
		return nil
	}
	if !exportFileName.MatchString(name) {
		return fmt.Errorf("the export names a file %q: files are <class>.jsonl, <class>.references.jsonl or objects/<key>", name)
	}
	return nil
}

// recv takes one message of the stream.
func (x *pluginExport) recv(c *pluginv1.PersonalDataExportChunk) error {
	switch {
	case x.manifest != nil:
		return fmt.Errorf("plugin %q sent a message after its export's manifest", x.plugin)
	case c.Manifest != nil:
		x.manifest = c.Manifest
		return nil
	case c.File == "":
		return fmt.Errorf("plugin %q sent a message of its export that names no file", x.plugin)
	}
	f := x.files[c.File]
	if f == nil {
		if err := checkExportFile(c.File); err != nil {
			return fmt.Errorf("plugin %q: %w", x.plugin, err)
		}
		tmp, err := os.CreateTemp(x.dir, "file-")
		if err != nil {
			return err
		}
		f = &pluginFile{name: c.File, f: tmp, c: counter{h: sha256.New()}, binary: len(c.Data) > 0}
		x.files[c.File] = f
	}
	if len(c.Data) > 0 && len(c.Jsonl) > 0 || f.binary != (len(c.Data) > 0) && len(c.Data)+len(c.Jsonl) > 0 {
		return fmt.Errorf("plugin %q sent %s both as JSON lines and as data", x.plugin, c.File)
	}
	for _, p := range [][]byte{c.Jsonl, c.Data} {
		if len(p) == 0 {
			continue
		}
		if _, err := f.f.Write(p); err != nil {
			return err
		}
		f.c.Write(p) //nolint:errcheck // never fails
	}
	return nil
}

// finish checks the stream against its manifest and adds the files.
func (x *pluginExport) finish() error {
	if x.manifest == nil {
		return fmt.Errorf("plugin %q: its export ended without its manifest", x.plugin)
	}
	listed := map[string]*pluginv1.PersonalDataExportFile{}
	for _, mf := range x.manifest.Files {
		if listed[mf.File] != nil {
			return fmt.Errorf("plugin %q: its export's manifest lists %s twice", x.plugin, mf.File)
		}
		if err := checkExportFile(mf.File); err != nil {
			return fmt.Errorf("plugin %q: %w", x.plugin, err)
		}
		listed[mf.File] = mf
	}
	for name := range x.files {
		if listed[name] == nil {
			return fmt.Errorf("plugin %q sent %s, which its export's manifest does not list", x.plugin, name)
		}
	}
	names := make([]string, 0, len(listed))
	for name := range listed {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		mf := listed[name]
		f := x.files[name]
		if f == nil {
			f = &pluginFile{name: name, c: counter{h: sha256.New()}}
		}
		sum := hex.EncodeToString(f.c.h.Sum(nil))
		if f.c.bytes != mf.Bytes || sum != mf.Sha256 {
			return fmt.Errorf("plugin %q: %s: the manifest says %d bytes with SHA-256 %s; the stream sent %d bytes with %s", x.plugin, name, mf.Bytes, mf.Sha256, f.c.bytes, sum)
		}
		if !strings.HasPrefix(name, "objects/") && f.c.lines != mf.Rows {
			return fmt.Errorf("plugin %q: %s: the manifest says %d rows; the stream sent %d", x.plugin, name, mf.Rows, f.c.lines)
		}
		err := x.b.write("plugins/"+x.plugin+"/"+name, x.plugin, x.version, mf.Class, mf.Table, func(w io.Writer) error {
			if f.f == nil {
				return nil
			}
			if _, err := f.f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			_, err := io.Copy(w, f.f)
			return err
		})
		if err != nil {
			return err
		}
	}
	x.b.part(x.plugin, x.version) // listed even when it holds nothing of the person
	return nil
}
