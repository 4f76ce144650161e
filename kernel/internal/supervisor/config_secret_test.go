package supervisor_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/supervisor"
)

// secretBlock is a plugin block whose config is cfg.
func secretBlock(cfg string) string {
	return `plugin "pay" {
  path    = "pay"
  version = "1.0.0"
  sha256  = "` + sum + `"
  config  = ` + cfg + `
}
`
}

// Operators give secrets with env() and file(), never in plugins.hcl. (Not
// parallel: t.Setenv.)
func TestConfigSecretsFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("EDULURE_TEST_STRIPE_KEY", "sk_live_from_env")
	t.Setenv("EDULURE_TEST_EMPTY", "")
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hook"), []byte("whsec_from_file\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "crlf"), []byte("crlf-secret\r\n"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "two"), []byte("two-lines\n\n"), 0o600))
	abs := filepath.Join(dir, "crlf")

	src := secretBlock(`{
    stripe_key = env("EDULURE_TEST_STRIPE_KEY")
    webhook    = file("hook")
    crlf       = (file("` + abs + `"))
    two        = file("two")
    empty      = env("EDULURE_TEST_EMPTY")
    label      = "plain"
  }`)
	cfg, err := supervisor.ParseConfig([]byte(src), filepath.Join(dir, "plugins.hcl"))
	require.NoError(t, err)
	pc := cfg.Plugins[0]
	var got map[string]string
	require.NoError(t, json.Unmarshal(pc.Config, &got))
	require.Equal(t, map[string]string{
		"stripe_key": "sk_live_from_env", "webhook": "whsec_from_file", "crlf": "crlf-secret",
		"two": "two-lines\n", "empty": "", "label": "plain",
	}, got, "a relative path is read from plugins.hcl's directory; one trailing newline goes")
	require.Equal(t, map[string]bool{"stripe_key": true, "webhook": true, "crlf": true, "two": true, "empty": true}, pc.ConfigExternal)
}

// A missing variable or file is a diagnostic at its line; no diagnostic
// repeats a value.
func TestConfigSecretsMissing(t *testing.T) {
	t.Setenv("EDULURE_TEST_PRESENT", "sk_live_never_shown")
	dir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(dir, "adir"), 0o700))
	big := filepath.Join(dir, "big")
	require.NoError(t, os.WriteFile(big, []byte(strings.Repeat("x", 65<<10)), 0o600))
	for _, tc := range []struct {
		name, cfg string
		want      []string
	}{
		{name: "unset variable", cfg: `{ stripe_key = env("EDULURE_TEST_UNSET_VARIABLE") }`,
			want: []string{"plugins.hcl:5,", "the environment variable EDULURE_TEST_UNSET_VARIABLE is not set"}},
		{name: "no name", cfg: `{ stripe_key = env("") }`, want: []string{"plugins.hcl:5,", "name an environment variable"}},
		{name: "missing file", cfg: `{ stripe_key = file("nope/secret") }`,
			want: []string{"plugins.hcl:5,", "cannot read " + filepath.Join(dir, "nope/secret") + ": no such file or directory"}},
		{name: "directory", cfg: `{ stripe_key = file("adir") }`, want: []string{"plugins.hcl:5,", "is a directory"}},
		{name: "too large", cfg: `{ stripe_key = file("big") }`, want: []string{"plugins.hcl:5,", "is larger than 64 KiB"}},
		{name: "wrong arity", cfg: `{ stripe_key = env() }`, want: []string{"plugins.hcl:5,", "Not enough function arguments"}},
		{name: "other functions", cfg: `{ stripe_key = upper(env("EDULURE_TEST_PRESENT")) }`, want: []string{"plugins.hcl:5,", `no function named "upper"`}},
		{name: "arithmetic on a secret", cfg: `{ n = env("EDULURE_TEST_PRESENT") + 1 }`, want: []string{"plugins.hcl:5,"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := supervisor.ParseConfig([]byte(secretBlock(tc.cfg)), filepath.Join(dir, "plugins.hcl"))
			require.Error(t, err)
			for _, w := range tc.want {
				require.ErrorContains(t, err, w)
			}
			require.NotContains(t, err.Error(), "sk_live_never_shown")
			require.NotContains(t, err.Error(), "xxxxxxxx")
		})
	}
	// Only config takes functions.
	src := strings.Replace(secretBlock(`{}`), `version = "1.0.0"`, `version = env("EDULURE_TEST_PRESENT")`, 1)
	_, err := supervisor.ParseConfig([]byte(src), filepath.Join(dir, "plugins.hcl"))
	require.ErrorContains(t, err, "Function calls not allowed")
}
