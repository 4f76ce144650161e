package httpapi_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// variant is one build of the test plugin (kernel/internal/supervisor/internal/testplugin).
// variant is a plugin binary for tests: the test plugin built with its
// name, version, prefix, subscriptions and tick set at link time, or, with
// module set, the plugin of that directory (its own Go module, relative to
// the repository's root) as it is.
type variant struct {
	name, version, prefix, subscribe, tick, module string
	caps                                           string // the manifest's capabilities, comma-separated; "": both storage ones; "none"
	personal                                       string // its personal data: "" its notes; "none"; "missing" (a class without its table)
}

type pluginBuild struct {
	once sync.Once
	path string
	sum  string
	err  error
}

var (
	buildDirOnce sync.Once
	buildDir     string
	builds       sync.Map // variant → *pluginBuild
)

// buildPlugin compiles a variant of the test plugin once per test binary.
func buildPlugin(t testing.TB, v variant) (path, sum string) {
	t.Helper()
	buildDirOnce.Do(func() {
		var err error
		buildDir, err = os.MkdirTemp("", "edulure-test-plugins-")
		if err != nil {
			panic(err)
		}
	})
	b, _ := builds.LoadOrStore(v, &pluginBuild{})
	pb := b.(*pluginBuild)
	pb.once.Do(func() {
		key := sha256.Sum256([]byte(v.subscribe + "|" + v.tick + "|" + v.caps + "|" + v.personal))
		pb.path = filepath.Join(buildDir, fmt.Sprintf("%s-%s-%s-%x", v.name, v.version, v.prefix, key[:4]))
		ldflags := fmt.Sprintf("-X main.name=%s -X main.version=%s -X main.prefix=%s", v.name, v.version, v.prefix)
		if v.subscribe != "" {
			ldflags += " -X main.subscribe=" + v.subscribe
		}
		if v.tick != "" {
			ldflags += " -X 'main.tick=" + v.tick + "'"
		}
		if v.personal != "" {
			ldflags += " -X main.personal=" + v.personal
		}
		switch v.caps {
		case "":
		case "none":
			ldflags += " -X main.caps="
		default:
			ldflags += " -X main.caps=" + v.caps
		}
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", pb.path, "github.com/edulure/edulure/kernel/internal/supervisor/internal/testplugin")
		if v.module != "" {
			cmd = exec.Command("go", "build", "-trimpath", "-o", pb.path, ".")
			cmd.Dir = filepath.Join("..", "..", "..", v.module)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			pb.err = fmt.Errorf("building test plugin: %v: %s", err, out)
			return
		}
		body, err := os.ReadFile(pb.path)
		if err != nil {
			pb.err = err
			return
		}
		s := sha256.Sum256(body)
		pb.sum = hex.EncodeToString(s[:])
	})
	require.NoError(t, pb.err)
	return pb.path, pb.sum
}

func removePluginBuilds() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// pluginBlock is one plugin "x" { ... } of a test plugins.hcl.
type pluginBlock struct {
	variant
	sha256         string // "" → the build's
	disabled       bool   // enabled_by_default = false
	config         string // HCL object, e.g. `{ crash_on_start = true }`
	maxConcurrent  int
	requestTimeout string
	limits         string // more attributes of the limits block, HCL, e.g. `storage_bytes = "1MiB"`
	allow          string // the privileged capabilities the operator allows, HCL list items, e.g. `"retention", "sign"`
}

func (p pluginBlock) hcl(t testing.TB) string {
	path, sum := buildPlugin(t, p.variant)
	if p.sha256 != "" {
		sum = p.sha256
	}
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %q {\n  path = %q\n  version = %q\n  sha256 = %q\n  enabled_by_default = %v\n", p.name, path, p.version, sum, !p.disabled)
	if p.config != "" {
		fmt.Fprintf(&b, "  config = %s\n", p.config)
	}
	if p.allow != "" {
		fmt.Fprintf(&b, "  capabilities = [%s]\n", p.allow)
	}
	if p.maxConcurrent > 0 || p.requestTimeout != "" || p.limits != "" {
		b.WriteString("  limits {\n")
		if p.limits != "" {
			fmt.Fprintf(&b, "    %s\n", p.limits)
		}
		if p.maxConcurrent > 0 {
			fmt.Fprintf(&b, "    max_concurrent_requests = %d\n", p.maxConcurrent)
		}
		if p.requestTimeout != "" {
			fmt.Fprintf(&b, "    request_timeout = %q\n", p.requestTimeout)
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return b.String()
}

// writePluginsFile writes a plugins.hcl with blocks and returns its path.
func writePluginsFile(t testing.TB, path string, blocks ...pluginBlock) string {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "plugins.hcl")
	}
	var b strings.Builder
	for _, p := range blocks {
		b.WriteString(p.hcl(t))
	}
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o600))
	return path
}

// withPlugins starts a kernel running the given plugins.
func withPlugins(t testing.TB, blocks ...pluginBlock) (*testBundle, string) {
	t.Helper()
	file := writePluginsFile(t, "", blocks...)
	b := setup(t, "EDULURE_PLUGINS_FILE", file)
	b.allow5xx = true
	return b, file
}

var probe = variant{name: "probe", version: "1.0.0"}
