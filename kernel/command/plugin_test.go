package command

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/dbtest"
)

// The scaffold writes a module that builds, passes go vet and its own
// tests against Postgres, and survives go mod tidy, as a new machine would
// run them: no -mod=mod and no checksum database (GOSUMDB cannot be
// reached here), only what the module itself holds and the module proxy.
// It runs in make test, so the scaffold cannot rot.
func TestPluginNewWritesAModuleThatPasses(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "attendance")
	r := run("plugin", "new", "attendance", "-dir", dir)
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, `wrote plugin "attendance" to `+dir)

	for _, f := range []string{
		"go.mod", "go.sum", "main.go", "README.md",
		"internal/attendance/doc.go", "internal/attendance/plugin.go", "internal/attendance/item.go",
		"internal/attendance/purge.go", "internal/attendance/plugin_test.go",
		"internal/attendance/migrations/0001_items.up.sql",
	} {
		require.FileExists(t, filepath.Join(dir, f))
	}
	main, err := os.ReadFile(filepath.Join(dir, "main.go"))
	require.NoError(t, err)
	require.Contains(t, string(main), "func main() { sdk.Serve(attendance.New) }")
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	sdkDir, err := filepath.Abs("../../sdk")
	require.NoError(t, err)
	rel, err := filepath.Rel(dir, sdkDir)
	require.NoError(t, err)
	require.Contains(t, string(mod), "replace github.com/edulure/edulure/sdk => "+filepath.ToSlash(rel)+"\n")

	gosum := filepath.Join(dir, "go.sum")
	sum, err := os.ReadFile(gosum)
	require.NoError(t, err)
	goCmd(t, dir, "build", "./...")
	goCmd(t, dir, "vet", "./...")
	out := goCmd(t, dir, "test", "-count=1", "./...")
	require.Contains(t, out, "ok  \tgithub.com/edulure/edulure/plugins/attendance/internal/attendance")
	goCmd(t, dir, "mod", "tidy")
	tidied, err := os.ReadFile(gosum)
	require.NoError(t, err)
	require.Equal(t, string(sum), string(tidied), "go mod tidy needed no checksum the scaffold did not write")
	goCmd(t, dir, "build", "./...")
}

// goCmd runs the go command in dir as on a new machine: the module's own
// go.mod and go.sum, no -mod=mod, the default checksum database (which
// this machine cannot reach, so every checksum must be in go.sum), and
// TEST_DATABASE_URL from the test's environment.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GONOSUMDB=", "GONOSUMCHECK=", "GOPRIVATE=", "GOSUMDB=",
		"GOWORK=off", dbtest.EnvURL+"="+os.Getenv(dbtest.EnvURL))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go %s in %s:\n%s", strings.Join(args, " "), dir, out)
	return string(out)
}

func TestPluginNewRefuses(t *testing.T) {
	t.Parallel()
	taken := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(taken, "main.go"), []byte("package main\n"), 0o644))
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no subcommand", []string{"plugin"}, 2, "Usage: edulure plugin new NAME"},
		{"another subcommand", []string{"plugin", "remove", "x"}, 2, "Usage: edulure plugin new NAME"},
		{"no name", []string{"plugin", "new"}, 2, "Usage: edulure plugin new NAME"},
		{"two names", []string{"plugin", "new", "one", "two"}, 2, "Usage: edulure plugin new NAME"},
		{"an unknown flag", []string{"plugin", "new", "attendance", "-colour", "red"}, 2, "flag provided but not defined: -colour"},
		{"a name with capitals", []string{"plugin", "new", "Attendance"}, 1, `the name "Attendance" must be 2 to 31 lowercase letters`},
		{"a name with a hyphen", []string{"plugin", "new", "my-plugin"}, 1, "lowercase letters, digits or underscores"},
		{"a kernel path", []string{"plugin", "new", "tenants", "-dir", filepath.Join(t.TempDir(), "x")}, 1, "/api/v1/tenants"},
		{"a directory in use", []string{"plugin", "new", "attendance", "-dir", taken}, 1, "exists and is not empty"},
		{"no SDK there", []string{"plugin", "new", "-sdk", t.TempDir(), "attendance", "-dir", filepath.Join(t.TempDir(), "x")}, 1, "reading the SDK's go.mod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(tc.args...)
			require.Equal(t, tc.code, r.code, r)
			require.Contains(t, r.stderr, tc.want, r)
		})
	}
	entries, err := os.ReadDir(taken)
	require.NoError(t, err)
	require.Len(t, entries, 1, "nothing written over")
}

// Flags may come before the name too, and the module path is the
// author's to choose.
func TestPluginNewFlagsBeforeTheName(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "quiz_bank")
	r := run("plugin", "new", "-dir", dir, "-module", "example.com/quizbank", "quiz_bank")
	require.Equal(t, 0, r.code, r)
	mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(mod), "module example.com/quizbank\n"), "%s", mod)
	plugin, err := os.ReadFile(filepath.Join(dir, "internal/quiz_bank/plugin.go"))
	require.NoError(t, err)
	require.Contains(t, string(plugin), `Path: "/api/v1/quiz_bank/items"`)
	require.Contains(t, string(plugin), `PermWrite = "quiz_bank.item.write"`)
}
