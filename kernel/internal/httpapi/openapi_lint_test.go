package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/httpapi"
)

// TestOpenAPILint lints /api/openapi.json, of a kernel running the
// plugins that ship and the probe, with @redocly/cli's recommended rules
// (the version testdata/redocly/package.json pins), as a client's tooling
// would: no errors, and no warnings but those a route cannot avoid.
func TestOpenAPILint(t *testing.T) {
	t.Parallel()
	redocly := redoclyCLI(t)
	b, _ := withPlugins(t, pluginBlock{variant: probe}, pluginBlock{variant: coursesPlugin}, pluginBlock{variant: gamificationPlugin})
	r := b.do("GET", "/api/openapi.json", "", nil)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	for _, path := range []string{"/api/v1/probe/items", "/api/v1/courses", "/api/v1/leaderboard"} {
		require.NotNil(t, r.get("paths", path), "the document has the plugins' routes (%s)", path)
	}
	requireBodiesRequiredAsServed(t, r.Raw)
	doc := filepath.Join(t.TempDir(), "openapi.json")
	require.NoError(t, os.WriteFile(doc, r.Raw, 0o600))

	// Warnings a route cannot avoid: an operation that takes no credentials,
	// no body, no query and no path parameter has no 4xx to document.
	allowed := map[string]string{
		"info-license #/info": "the project has not chosen a licence for the API",
	}
	for _, route := range b.kernel.API.Routes() {
		if route.Access == httpapi.Public && route.Request == nil && route.Query == nil && len(route.Errors) == 0 && !strings.Contains(route.Path, ":") {
			pointer := "#/paths/" + strings.ReplaceAll(route.Path, "/", "~1") + "/" + strings.ToLower(route.Method) + "/responses"
			allowed["operation-4xx-response "+pointer] = "it answers no client error"
		}
	}

	cmd := exec.Command(redocly, "lint", "--format=json", "--max-problems=1000", doc)
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.Output() // exits 1 when it finds errors; the report is on stdout either way
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		require.NoError(t, err, "running %s", redocly)
	}
	var report struct {
		Problems []struct {
			RuleID   string `json:"ruleId"`
			Severity string `json:"severity"`
			Message  string `json:"message"`
			Location []struct {
				Pointer string `json:"pointer"`
			} `json:"location"`
		} `json:"problems"`
	}
	require.NoError(t, json.Unmarshal(out, &report), "redocly's report: %s\n%s", out, stderrOf(err))
	errorsFound, warnings := 0, 0
	for _, p := range report.Problems {
		pointer := ""
		if len(p.Location) > 0 {
			pointer = p.Location[0].Pointer
		}
		if p.Severity == "error" {
			errorsFound++
		} else {
			warnings++
		}
		if _, ok := allowed[p.RuleID+" "+pointer]; ok && p.Severity != "error" {
			continue
		}
		t.Errorf("redocly lint: %s %s at %s: %s", p.Severity, p.RuleID, pointer, p.Message)
	}
	t.Logf("redocly lint (recommended): %d errors, %d warnings (%d allowed)", errorsFound, warnings, len(allowed))
}

// requireBodiesRequiredAsServed checks that a plugin route's body is marked
// required only when its schema requires a property (wire.Contract's
// rule: the kernel accepts no body at all otherwise), as for marking a
// lesson complete, whose time spent may be left out.
func requireBodiesRequiredAsServed(t *testing.T, raw []byte) {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	require.NoError(t, err)
	complete := false
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.Extensions["x-plugin"] == nil || op.RequestBody == nil {
				continue
			}
			media := op.RequestBody.Value.Content.Get("application/json")
			require.NotNil(t, media, "%s %s", method, path)
			s := media.Schema.Value
			required := len(s.Required) > 0
			for _, all := range s.AllOf {
				required = required || len(all.Value.Required) > 0
			}
			require.Equal(t, required, op.RequestBody.Value.Required, "%s %s: body required", method, path)
			if strings.HasPrefix(path, "/api/v1/enrolments/") && strings.HasSuffix(path, "/complete") && method == "POST" {
				complete = true
				require.False(t, op.RequestBody.Value.Required, "%s %s: marking a lesson complete needs no body", method, path)
			}
		}
	}
	require.True(t, complete, "the document has the courses plugin's route that marks a lesson complete")
}

func stderrOf(err error) string {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(exit.Stderr)
	}
	return ""
}

var redocly struct {
	once sync.Once
	path string
	err  error
}

// redoclyCLI installs the pinned @redocly/cli into testdata/redocly (once
// per lock file change) and returns its command.
func redoclyCLI(t *testing.T) string {
	t.Helper()
	redocly.once.Do(func() { redocly.path, redocly.err = installRedocly() })
	require.NoError(t, redocly.err)
	return redocly.path
}

func installRedocly() (string, error) {
	dir, err := filepath.Abs(filepath.Join("testdata", "redocly"))
	if err != nil {
		return "", err
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "", fmt.Errorf("TestOpenAPILint runs @redocly/cli, which needs Node.js 20.19 or later and npm: %s is not on PATH (install Debian's nodejs and npm)", tool)
		}
	}
	lock, err := os.Stat(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	installed, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json"))
	if err != nil || installed.ModTime().Before(lock.ModTime()) {
		cmd := exec.Command("npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund")
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("installing @redocly/cli (npm ci in %s): %v\n%s", dir, err, out)
		}
	}
	bin := filepath.Join(dir, "node_modules", ".bin", "redocly")
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("npm ci in %s installed no redocly command: %w", dir, err)
	}
	return bin, nil
}
