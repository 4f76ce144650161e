package command

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"text/template"

	"golang.org/x/mod/modfile"

	"github.com/edulure/edulure/sdk/wire"
)

func init() {
	commands["plugin"] = command{synopsis: "Write a new plugin module: plugin new NAME [-dir plugins/NAME]", run: pluginCmd}
}

// sdkModule is the module path of the SDK, which a new plugin's go.mod
// replaces with the repository's copy (it is not published).
const sdkModule = "github.com/edulure/edulure/sdk"

//go:embed scaffold/*.tmpl
var scaffold embed.FS

// scaffoldFiles are the files of a new plugin: where each goes (a template
// itself, with the plugin's package name) and its template.
var scaffoldFiles = []struct{ path, tmpl string }{
	{"go.mod", "go.mod.tmpl"},
	{"main.go", "main.go.tmpl"},
	{"README.md", "README.md.tmpl"},
	{"internal/{{.Package}}/doc.go", "doc.go.tmpl"},
	{"internal/{{.Package}}/plugin.go", "plugin.go.tmpl"},
	{"internal/{{.Package}}/item.go", "item.go.tmpl"},
	{"internal/{{.Package}}/purge.go", "purge.go.tmpl"},
	{"internal/{{.Package}}/migrations/0001_items.up.sql", "migration.sql.tmpl"},
	{"internal/{{.Package}}/plugin_test.go", "plugin_test.go.tmpl"},
}

func pluginCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "Usage: edulure plugin new NAME [-dir DIR] [-module PATH] [-sdk DIR]")
		return errUsage
	}
	fs := newFlags("plugin new", stderr)
	dir := fs.String("dir", "", "directory to write the module to, which must not exist or be empty (default plugins/NAME)")
	module := fs.String("module", "", "the module's path (default github.com/edulure/edulure/plugins/NAME)")
	sdkDir := fs.String("sdk", "", "the Edulure SDK's directory, for go.mod's replace (default: the sdk/ of the repository around the current directory)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: edulure plugin new NAME [-dir DIR] [-module PATH] [-sdk DIR]\n\n"+
			"Writes a new plugin module that builds and passes its tests: one route backed by Postgres\n"+
			"(POST and a paginated GET), a migration, a published event, a nightly job, typed\n"+
			"configuration with defaults, a plugintest test and a README. NAME is the plugin's name:\n"+
			"lowercase letters, digits and underscores, starting with a letter.\n\nFlags:")
		fs.PrintDefaults()
	}
	// Flags may come before or after NAME.
	var names []string
	for rest := args[1:]; ; {
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if rest = fs.Args(); len(rest) == 0 {
			break
		}
		names, rest = append(names, rest[0]), rest[1:]
	}
	if len(names) != 1 {
		fs.Usage()
		return errUsage
	}
	name := names[0]
	if !wire.PluginName.MatchString(name) {
		return fmt.Errorf("the name %q must be 2 to 31 lowercase letters, digits or underscores, starting with a letter (it names the database schema plugin_<name>)", name)
	}
	if slices.Contains(wire.ReservedResources, name) {
		return fmt.Errorf("the name %q is a path the kernel keeps for itself (/api/v1/%s); choose another", name, name)
	}
	if *dir == "" {
		*dir = filepath.Join("plugins", name)
	}
	if *module == "" {
		*module = "github.com/edulure/edulure/plugins/" + name
	}
	s, err := newScaffold(name, *dir, *module, *sdkDir)
	if err != nil {
		return err
	}
	if err := s.write(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote plugin %q to %s (module %s, SDK %s)\n\n", name, s.dir, s.Module, s.sdkDir)
	fmt.Fprintf(stdout, "  cd %s\n  go test ./...\n", *dir)
	fmt.Fprintf(stdout, "  go build -o %s . && ./%s manifest\n\n", name, name)
	fmt.Fprintln(stdout, "A plugin under plugins/ is built and loaded by `make run` and tested by `make test`.")
	return nil
}

// pluginScaffold is what the templates are filled with.
type pluginScaffold struct {
	Name      string // the plugin's name
	Package   string // its Go package, internal/<Package>
	Module    string // its module path
	Path      string // its route: /api/v1/<name>/items
	GoVersion string // the SDK's go directive
	SDKPath   string // the SDK's directory, relative to the module's
	Direct    []*modfile.Require
	Indirect  []*modfile.Require

	dir, sdkDir string // absolute
	sum         []byte // the SDK's go.sum
}

func newScaffold(name, dir, module, sdkDir string) (*pluginScaffold, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if entries, err := os.ReadDir(abs); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s exists and is not empty: choose another -dir", dir)
	}
	if sdkDir == "" {
		if sdkDir, err = findSDK(filepath.Dir(abs)); err != nil {
			return nil, err
		}
	}
	s := &pluginScaffold{Name: name, Package: name, Module: module, Path: "/api/v1/" + name + "/items", dir: abs}
	if s.sdkDir, err = filepath.Abs(sdkDir); err != nil {
		return nil, err
	}
	if err := s.readSDK(); err != nil {
		return nil, err
	}
	rel, err := filepath.Rel(abs, s.sdkDir)
	if err != nil {
		return nil, fmt.Errorf("the SDK at %s: %w", s.sdkDir, err)
	}
	if s.SDKPath = filepath.ToSlash(rel); !strings.HasPrefix(s.SDKPath, "../") {
		s.SDKPath = "./" + s.SDKPath // go.mod's replace needs a path that looks like one
	}
	return s, nil
}

// findSDK looks for the repository's sdk/ in from and its parents, then in
// the current directory and its parents.
func findSDK(from string) (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for _, start := range []string{from, wd} {
		for d := start; ; d = filepath.Dir(d) {
			if isSDK(filepath.Join(d, "sdk")) {
				return filepath.Join(d, "sdk"), nil
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return "", errors.New("cannot find the Edulure SDK (a directory sdk/ holding the module " + sdkModule + ") around the new plugin's directory or the current one: run this in the Edulure repository, or give its sdk/ with -sdk")
}

func isSDK(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	return err == nil && modfile.ModulePath(b) == sdkModule
}

// readSDK takes the new module's requirements from the SDK's go.mod and
// its checksums from the SDK's go.sum: the SDK's dependencies at the
// versions the SDK is tested with, and every checksum `go build`, `go
// test` and `go mod tidy` need, so that none has to be fetched from a
// checksum database.
func (s *pluginScaffold) readSDK() error {
	file := filepath.Join(s.sdkDir, "go.mod")
	b, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("reading the SDK's go.mod: %w", err)
	}
	mod, err := modfile.ParseLax(file, b, nil)
	if err != nil {
		return err
	}
	if mod.Module == nil || mod.Module.Mod.Path != sdkModule {
		return fmt.Errorf("%s is not the go.mod of %s", file, sdkModule)
	}
	if mod.Go == nil {
		return fmt.Errorf("%s has no go directive", file)
	}
	s.GoVersion = mod.Go.Version
	// What the new plugin's own code imports; the rest is the SDK's.
	direct := []string{"github.com/jackc/pgx/v5", "github.com/stretchr/testify"}
	s.Direct = []*modfile.Require{{Mod: mod.Module.Mod}}
	s.Direct[0].Mod.Version = "v0.0.0"
	for _, r := range mod.Require {
		if slices.Contains(direct, r.Mod.Path) {
			s.Direct = append(s.Direct, r)
		} else {
			s.Indirect = append(s.Indirect, r)
		}
	}
	sortRequires := func(rs []*modfile.Require) {
		slices.SortFunc(rs, func(a, b *modfile.Require) int { return strings.Compare(a.Mod.Path, b.Mod.Path) })
	}
	sortRequires(s.Direct)
	sortRequires(s.Indirect)
	if len(s.Direct) != len(direct)+1 {
		return fmt.Errorf("%s does not require %s: the scaffold's code needs them", file, strings.Join(direct, " and "))
	}
	if s.sum, err = os.ReadFile(filepath.Join(s.sdkDir, "go.sum")); err != nil {
		return fmt.Errorf("reading the SDK's go.sum: %w", err)
	}
	return nil
}

// write writes the module, formatting its Go files.
func (s *pluginScaffold) write() error {
	files := map[string][]byte{"go.sum": s.sum}
	for _, f := range scaffoldFiles {
		name, err := s.fill(f.path, f.path)
		if err != nil {
			return err
		}
		text, err := scaffold.ReadFile(path.Join("scaffold", f.tmpl))
		if err != nil {
			return err
		}
		out, err := s.fill(f.tmpl, string(text))
		if err != nil {
			return err
		}
		b := []byte(out)
		if strings.HasSuffix(name, ".go") {
			if b, err = format.Source(b); err != nil {
				return fmt.Errorf("scaffold %s: %w", f.tmpl, err)
			}
		}
		files[name] = b
	}
	for name, b := range files {
		p := filepath.Join(s.dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (s *pluginScaffold) fill(name, text string) (string, error) {
	t, err := template.New(name).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("scaffold %s: %w", name, err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, s); err != nil {
		return "", fmt.Errorf("scaffold %s: %w", name, err)
	}
	return b.String(), nil
}
