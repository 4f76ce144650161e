package supervisor_test

import (
	"crypto/sha256"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/supervisor"
)

// sum is a valid checksum; test sources write SUM where it goes.
const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLoadConfigFull(t *testing.T) {
	t.Parallel()

	cfg, err := supervisor.LoadConfig("testdata/config/full.hcl")
	require.NoError(t, err)

	wantPath, err := filepath.Abs("testdata/config/full.hcl")
	require.NoError(t, err)
	require.Equal(t, wantPath, cfg.Path)
	require.Len(t, cfg.Plugins, 2)

	gamification := cfg.Plugins[0]
	require.JSONEq(t, `{
		"points_per_lesson": 10,
		"label": "XP",
		"ratio": 1.5,
		"levels": [100, 250, 500],
		"badges": {"first_lesson": "Beginner", "streak": null}
	}`, string(gamification.Config))
	courses := cfg.Plugins[1]
	require.JSONEq(t, `{}`, string(courses.Config))

	emptySum := sha256.Sum256(nil) // full.hcl holds it in upper case
	wantBin, err := filepath.Abs("testdata/config/bin/plugins/gamification")
	require.NoError(t, err)
	require.Equal(t, 11, gamification.ConfigKeys["ratio"].Start.Line, "where each setting is written, for messages")
	require.Equal(t, "testdata/config/full.hcl", gamification.ConfigAt.Filename)
	gamification.Config, courses.Config = nil, nil
	gamification.ConfigAt, gamification.ConfigKeys, courses.ConfigAt, courses.ConfigKeys = nil, nil, nil, nil
	require.Equal(t, supervisor.PluginConfig{
		Name:             "gamification",
		Path:             wantBin,
		Version:          "0.1.0",
		SHA256:           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		Checksum:         emptySum[:],
		EnabledByDefault: true,
		Limits: supervisor.Limits{
			MaxConcurrentRequests:    128,
			RequestTimeout:           90 * time.Second,
			DBConnections:            10,
			MaxStreams:               5000,
			MaxStreamsPerInstitution: 250,
			StreamIdleTimeout:        30 * time.Second,
			StreamMaxDuration:        2 * time.Hour,
			StorageBytes:             500 << 30,
			StorageObjectBytes:       100_000_000,
		},
	}, gamification)
	require.Equal(t, supervisor.PluginConfig{
		Name:     "courses",
		Path:     "/opt/edulure/plugins/courses",
		Version:  "1.2.3-rc.1+build.5",
		SHA256:   sum,
		Checksum: []byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef},
		Limits:   supervisor.DefaultLimits,
	}, courses)
}

func TestParseConfigDefaults(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
	}{
		{
			name: "no limits block",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "2.0.0"
  sha256  = "SUM"
}`,
		},
		{
			name: "empty limits block",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "2.0.0"
  sha256  = "SUM"
  limits {}
}`,
		},
		{
			name: "null config",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "2.0.0"
  sha256  = "SUM"
  config  = null
}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := supervisor.ParseConfig([]byte(strings.ReplaceAll(tt.src, "SUM", sum)), "/etc/edulure/plugins.hcl")
			require.NoError(t, err)
			require.Empty(t, cfg.Path, "Path is only set by LoadConfig")
			require.Len(t, cfg.Plugins, 1)
			p := cfg.Plugins[0]
			require.Equal(t, "quiz", p.Name)
			require.Equal(t, "/etc/edulure/quiz", p.Path)
			require.False(t, p.EnabledByDefault)
			require.JSONEq(t, `{}`, string(p.Config))
			require.Equal(t, supervisor.Limits{
				MaxConcurrentRequests:    64,
				RequestTimeout:           10 * time.Second,
				DBConnections:            4,
				MaxStreams:               1000,
				MaxStreamsPerInstitution: 100,
				StreamIdleTimeout:        time.Minute,
				StreamMaxDuration:        time.Hour,
				StorageBytes:             10 << 30,
				StorageObjectBytes:       1 << 30,
			}, p.Limits)
		})
	}
}

// A plugin capped below the default streams per institution has its cap
// per institution too; one set explicitly above the plugin's is an error
// (TestParseConfigErrors).
// The operator allows privileged capabilities per plugin; anything else in
// the list is refused, naming what is known.
func TestParseConfigCapabilities(t *testing.T) {
	t.Parallel()
	src := `plugin "governance" {
  path         = "governance"
  version      = "0.1.0"
  sha256       = "SUM"
  capabilities = CAPS
}`
	parse := func(caps string) (*supervisor.Config, error) {
		return supervisor.ParseConfig([]byte(strings.NewReplacer("SUM", sum, "CAPS", caps).Replace(src)), "plugins.hcl")
	}
	cfg, err := parse(`["retention", "grants", "sign"]`)
	require.NoError(t, err)
	require.Equal(t, []string{"retention", "grants", "sign"}, cfg.Plugins[0].Capabilities)
	for caps, want := range map[string]string{
		`["storage"]`:      `Capability "storage" is not a privileged capability the operator grants`,
		`["sign", "sign"]`: `Capability "sign" is listed twice`,
		`"sign"`:           "expected a list of privileged capabilities",
		`["telepathy"]`:    "known: retention, grants, sign",
	} {
		_, err := parse(caps)
		require.ErrorContains(t, err, want, caps)
		require.ErrorContains(t, err, "plugins.hcl:5,", caps)
	}
	cfg, err = supervisor.ParseConfig([]byte(strings.ReplaceAll("plugin \"quiz\" {\n path = \"q\"\n version = \"1.0.0\"\n sha256 = \"SUM\"\n}", "SUM", sum)), "plugins.hcl")
	require.NoError(t, err)
	require.Empty(t, cfg.Plugins[0].Capabilities, "none unless allowed")
}

func TestParseConfigStreamCaps(t *testing.T) {
	t.Parallel()
	src := `plugin "quiz" {
  path    = "quiz"
  version = "2.0.0"
  sha256  = "SUM"
  limits {
    max_streams = 50
  }
}`
	cfg, err := supervisor.ParseConfig([]byte(strings.ReplaceAll(src, "SUM", sum)), "plugins.hcl")
	require.NoError(t, err)
	require.Equal(t, 50, cfg.Plugins[0].Limits.MaxStreams)
	require.Equal(t, 50, cfg.Plugins[0].Limits.MaxStreamsPerInstitution)
}

func TestParseConfigPaths(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		filename string
		path     string
		want     string
	}{
		{name: "relative", filename: "/etc/edulure/plugins.hcl", path: "bin/quiz", want: "/etc/edulure/bin/quiz"},
		{name: "parent directory", filename: "/etc/edulure/plugins.hcl", path: "../../opt/quiz", want: "/opt/quiz"},
		{name: "dot segments cleaned", filename: "/etc/edulure/plugins.hcl", path: "./bin//quiz", want: "/etc/edulure/bin/quiz"},
		{name: "absolute kept", filename: "/etc/edulure/plugins.hcl", path: "/usr/lib/edulure/quiz", want: "/usr/lib/edulure/quiz"},
		{name: "relative file name", filename: "conf/plugins.hcl", path: "quiz", want: mustAbs(t, "conf/quiz")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := `plugin "quiz" {
  path    = "` + tt.path + `"
  version = "1.0.0"
  sha256  = "` + sum + `"
}`
			cfg, err := supervisor.ParseConfig([]byte(src), tt.filename)
			require.NoError(t, err)
			require.Equal(t, tt.want, cfg.Plugins[0].Path)
		})
	}
}

func mustAbs(t *testing.T, p string) string {
	t.Helper()
	abs, err := filepath.Abs(p)
	require.NoError(t, err)
	return abs
}

func TestParseConfigEmpty(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string
	}{
		{name: "no bytes", src: ""},
		{name: "whitespace", src: "\n\n  \t\n"},
		{name: "comments", src: "# nothing yet\n// still nothing\n/* none */\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := supervisor.ParseConfig([]byte(tt.src), "plugins.hcl")
			require.NoError(t, err)
			require.Empty(t, cfg.Plugins)
		})
	}
}

func TestLoadConfigEmptyFile(t *testing.T) {
	t.Parallel()
	cfg, err := supervisor.LoadConfig("testdata/config/empty.hcl")
	require.NoError(t, err)
	require.Empty(t, cfg.Plugins)
	_, ok := cfg.Plugin("gamification")
	require.False(t, ok)
}

func TestLoadConfigMissingFile(t *testing.T) {
	t.Parallel()
	_, err := supervisor.LoadConfig("testdata/config/does-not-exist.hcl")
	require.ErrorIs(t, err, fs.ErrNotExist)
	require.ErrorContains(t, err, "testdata/config/does-not-exist.hcl")
}

func TestLoadConfigReportsEveryProblem(t *testing.T) {
	t.Parallel()
	_, err := supervisor.LoadConfig("testdata/config/invalid.hcl")
	require.Error(t, err)

	lines := strings.Split(err.Error(), "\n")
	require.Len(t, lines, 3, "one line per problem, got:\n%s", err)
	require.Contains(t, lines[0], "testdata/config/invalid.hcl:1,8-22: Invalid plugin name")
	require.Contains(t, lines[1], `testdata/config/invalid.hcl:3,13-21: Invalid version; "v0.1.0" has a leading "v"`)
	require.Contains(t, lines[2], "testdata/config/invalid.hcl:4,13-18: Invalid sha256")

	var diags hcl.Diagnostics
	require.ErrorAs(t, err, &diags)
	require.Len(t, diags, 3)
	require.Equal(t, 3, diags[1].Subject.Start.Line)
}

func TestConfigPlugin(t *testing.T) {
	t.Parallel()

	cfg, err := supervisor.LoadConfig("testdata/config/full.hcl")
	require.NoError(t, err)

	p, ok := cfg.Plugin("courses")
	require.True(t, ok)
	require.Equal(t, "1.2.3-rc.1+build.5", p.Version)

	_, ok = cfg.Plugin("missing")
	require.False(t, ok)

	var none *supervisor.Config
	_, ok = none.Plugin("courses")
	require.False(t, ok)
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		src  string   // SUM is replaced by a valid checksum
		want []string // each must appear in the error
	}{
		{
			name: "syntax error",
			src: `plugin "quiz" {
  path = "quiz"
  version = "1.0.0
}`,
			want: []string{"plugins.hcl:3,", "Unterminated template string"},
		},
		{
			name: "unclosed block",
			src: `plugin "quiz" {
  path = "quiz"
`,
			want: []string{"plugins.hcl:1,", "Unclosed configuration block"},
		},
		{
			name: "unknown top-level block",
			src: `
plugins "quiz" {
}`,
			want: []string{"plugins.hcl:2,", `Unsupported block type; Blocks of type "plugins" are not expected here. Did you mean "plugin"?`},
		},
		{
			name: "top-level attribute",
			src: `dir = "bin"
`,
			want: []string{"plugins.hcl:1,", `Unsupported argument; An argument named "dir" is not expected here.`},
		},
		{
			name: "missing label",
			src: `plugin {
}`,
			want: []string{"plugins.hcl:1,", "Missing name for plugin"},
		},
		{
			name: "unknown attribute",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  enabled = true
}`,
			want: []string{"plugins.hcl:5,", `Unsupported argument; An argument named "enabled" is not expected here.`},
		},
		{
			name: "misspelt attribute",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha265  = "SUM"
}`,
			want: []string{"plugins.hcl:4,", `Did you mean "sha256"?`, `plugins.hcl:1,1-14: Missing required argument; Plugin "quiz" has no "sha256"; expected the SHA-256 checksum`},
		},
		{
			name: "unknown block",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  resources {}
}`,
			want: []string{"plugins.hcl:5,", `Blocks of type "resources" are not expected here`},
		},
		{
			name: "unknown limits attribute",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    max_memory = "1GiB"
  }
}`,
			want: []string{"plugins.hcl:6,", `An argument named "max_memory" is not expected here`},
		},
		{
			name: "missing required attributes",
			src: `
plugin "quiz" {
}`,
			want: []string{
				`plugins.hcl:2,1-14: Missing required argument; Plugin "quiz" has no "path"; expected the plugin binary's path`,
				`plugins.hcl:2,1-14: Missing required argument; Plugin "quiz" has no "version"; expected the plugin's semantic version`,
				`plugins.hcl:2,1-14: Missing required argument; Plugin "quiz" has no "sha256"`,
			},
		},
		{
			name: "name with upper case",
			src: `plugin "Quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:1,8-14: Invalid plugin name", `"Quiz" is not allowed`, "lowercase letter"},
		},
		{
			name: "name too short",
			src: `plugin "q" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:1,8-11: Invalid plugin name", "2 to 31 characters"},
		},
		{
			name: "name too long",
			src: `plugin "abcdefghijklmnopqrstuvwxyz_abcdef" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:1,", "Invalid plugin name", "2 to 31 characters"},
		},
		{
			name: "name with hyphen",
			src: `plugin "quiz-bank" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:1,", "Invalid plugin name", "underscores"},
		},
		{
			name: "name starting with digit",
			src: `plugin "2quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:1,", "Invalid plugin name", "starting with a lowercase letter"},
		},
		{
			name: "duplicate name",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
}

plugin "quiz" {
  path    = "quiz2"
  version = "1.0.1"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:7,8-14: Duplicate plugin", `already declared at plugins.hcl:1,8-14`, "must be unique"},
		},
		{
			name: "empty path",
			src: `plugin "quiz" {
  path    = ""
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:2,13-15: Invalid path", "path is empty"},
		},
		{
			name: "path not a string",
			src: `plugin "quiz" {
  path    = ["quiz"]
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:2,", "Invalid path", "path is tuple; expected a string"},
		},
		{
			name: "variable reference",
			src: `plugin "quiz" {
  path    = var.quiz_path
  version = "1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:2,", "Variables not allowed"},
		},
		{
			name: "function call",
			src: `plugin "quiz" {
  path    = "quiz"
  version = upper("1.0.0")
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:3,", "Function calls not allowed"},
		},
		{
			name: "version with leading v",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "v1.0.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:3,13-21: Invalid version", `has a leading "v"`, `expected the bare semantic version "1.0.0"`},
		},
		{
			name: "version missing patch",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:3,", "Invalid version", `"1.0" is not a semantic version; expected MAJOR.MINOR.PATCH`},
		},
		{
			name: "version with leading zero",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.02.0"
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:3,", "Invalid version", "expected MAJOR.MINOR.PATCH"},
		},
		{
			name: "version as number",
			src: `plugin "quiz" {
  path    = "quiz"
  version = 1.0
  sha256  = "SUM"
}`,
			want: []string{"plugins.hcl:3,", "Invalid version", `"1" is not a semantic version`},
		},
		{
			name: "checksum too short",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "0123abcd"
}`,
			want: []string{"plugins.hcl:4,13-23: Invalid sha256", "expected exactly 64 hex characters", "got 8 characters"},
		},
		{
			name: "checksum not hex",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "` + strings.Repeat("g", 64) + `"
}`,
			want: []string{"plugins.hcl:4,", "Invalid sha256", "expected exactly 64 hex characters (0-9, a-f)"},
		},
		{
			name: "enabled_by_default not bool",
			src: `plugin "quiz" {
  path               = "quiz"
  version            = "1.0.0"
  sha256             = "SUM"
  enabled_by_default = "yes"
}`,
			want: []string{"plugins.hcl:5,24-29: Invalid enabled_by_default", "expected true or false"},
		},
		{
			name: "config is a string",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  config  = "points=10"
}`,
			want: []string{"plugins.hcl:5,13-24: Invalid config", "must be an object such as { points_per_lesson = 10 }; got string"},
		},
		{
			name: "config is a list",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  config  = [1, 2]
}`,
			want: []string{"plugins.hcl:5,", "Invalid config", "must be an object", "got tuple"},
		},
		{
			name: "config written as a block",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  config {
    points = 10
  }
}`,
			want: []string{"plugins.hcl:5,", `Did you mean to define argument "config"? If so, use the equals sign to assign it a value.`},
		},
		{
			name: "max_concurrent_requests zero",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    max_concurrent_requests = 0
  }
}`,
			want: []string{"plugins.hcl:6,31-32: Invalid max_concurrent_requests", "max_concurrent_requests is 0; expected a whole number from 1 to 10000"},
		},
		{
			name: "max_concurrent_requests too high",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    max_concurrent_requests = 10001
  }
}`,
			want: []string{"plugins.hcl:6,", "max_concurrent_requests is 10001; expected a whole number from 1 to 10000"},
		},
		{
			name: "max_concurrent_requests fractional",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    max_concurrent_requests = 1.5
  }
}`,
			want: []string{"plugins.hcl:6,", "max_concurrent_requests is 1.5; expected a whole number"},
		},
		{
			name: "db_connections too high",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    db_connections = 101
  }
}`,
			want: []string{"plugins.hcl:6,22-25: Invalid db_connections", "db_connections is 101; expected a whole number from 1 to 100"},
		},
		{
			name: "db_connections not a number",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    db_connections = "four"
  }
}`,
			want: []string{"plugins.hcl:6,", "Invalid db_connections", "db_connections is string; expected a whole number from 1 to 100"},
		},
		{
			name: "storage_bytes zero",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    storage_bytes = 0
  }
}`,
			want: []string{"plugins.hcl:6,21-22: Invalid storage_bytes", `storage_bytes is 0; expected a number of bytes from 1 to 1 PiB, or a size such as "500MiB"`},
		},
		{
			name: "storage_object_bytes with an unknown unit",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    storage_object_bytes = "10 gigs"
  }
}`,
			want: []string{"plugins.hcl:6,", `storage_object_bytes is "10 gigs"; expected a number of bytes`, "units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB"},
		},
		{
			name: "storage_bytes over a PiB",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    storage_bytes = "2000TiB"
  }
}`,
			want: []string{"plugins.hcl:6,", `storage_bytes is "2000TiB"`},
		},
		{
			name: "storage_bytes a list",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    storage_bytes = [1]
  }
}`,
			want: []string{"plugins.hcl:6,", `storage_bytes is tuple; expected a number of bytes`},
		},
		{
			name: "request_timeout without unit",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    request_timeout = 10
  }
}`,
			want: []string{"plugins.hcl:6,23-25: Invalid request_timeout", `request_timeout is "10"; expected a Go duration string greater than 0 and at most 5m0s, e.g. "10s"`},
		},
		{
			name: "request_timeout zero",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    request_timeout = "0s"
  }
}`,
			want: []string{"plugins.hcl:6,", `request_timeout is "0s"; expected a Go duration string greater than 0`},
		},
		{
			name: "request_timeout too long",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    request_timeout = "5m1s"
  }
}`,
			want: []string{"plugins.hcl:6,", `request_timeout is "5m1s"; expected a Go duration string greater than 0 and at most 5m0s`},
		},
		{
			name: "max_streams zero",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    max_streams = 0
  }
}`,
			want: []string{"plugins.hcl:6,19-20: Invalid max_streams", "max_streams is 0; expected a whole number from 1 to 100000"},
		},
		{
			name: "max_streams_per_institution above max_streams",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    max_streams                 = 10
    max_streams_per_institution = 20
  }
}`,
			want: []string{"plugins.hcl:7,35-37: Invalid max_streams_per_institution", "max_streams_per_institution is 20, more than max_streams (10); expected at most max_streams"},
		},
		{
			name: "stream_idle_timeout too short",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    stream_idle_timeout = "10ms"
  }
}`,
			want: []string{"plugins.hcl:6,", `Invalid stream_idle_timeout`, `stream_idle_timeout is "10ms"; expected a Go duration string from 100ms to 1h0m0s, e.g. "60s" or "2m"`},
		},
		{
			name: "stream_max_duration without unit",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    stream_max_duration = 3600
  }
}`,
			want: []string{"plugins.hcl:6,", `stream_max_duration is "3600"; expected a Go duration string from 1s to 24h0m0s`},
		},
		{
			name: "two limits blocks",
			src: `plugin "quiz" {
  path    = "quiz"
  version = "1.0.0"
  sha256  = "SUM"
  limits {
    db_connections = 2
  }
  limits {
    db_connections = 3
  }
}`,
			want: []string{"plugins.hcl:8,3-9: Duplicate limits block", "already has a limits block at plugins.hcl:5,3-9; expected at most one"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := supervisor.ParseConfig([]byte(strings.ReplaceAll(tt.src, "SUM", sum)), "plugins.hcl")
			require.Error(t, err)
			require.Nil(t, cfg)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
		})
	}
}
