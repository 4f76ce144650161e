package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk/wire"
)

// writeDevPluginsFile writes a plugins.hcl listing every plugin binary in
// dir, each enabled by default, with its name and version read from the
// binary itself (`<binary> manifest`) and its SHA-256, and the operator's
// configuration configs names for it (an HCL object), if any. The
// privileged capabilities a manifest declares (retention, grants, sign) are
// allowed: the demo trusts the binaries it built itself, where a
// production plugins.hcl lists them by hand (docs/security.md). It returns
// the names.
func writeDevPluginsFile(ctx context.Context, dir, file string, configs map[string]string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("# Written by `edulure dev` (make run) from the binaries in " + dir + ".\n# Rewritten on every start; for your own, set EDULURE_PLUGINS_FILE.\n\n")
	names := []string{}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		path, err := filepath.Abs(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		name, version, caps, err := readManifest(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("plugin binary %s: %w", path, err)
		}
		sum, err := fileSHA256(path)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "plugin %q {\n  path               = %q\n  version            = %q\n  sha256             = %q\n  enabled_by_default = true\n", name, path, version, sum)
		var allowed []string
		for _, c := range caps {
			if slices.Contains(wire.PrivilegedCapabilities, c) {
				allowed = append(allowed, strconv.Quote(c))
			}
		}
		if len(allowed) > 0 {
			fmt.Fprintf(&b, "  capabilities       = [%s]\n", strings.Join(allowed, ", "))
		}
		if c := configs[name]; c != "" {
			fmt.Fprintf(&b, "  config             = %s\n", c)
		}
		b.WriteString("}\n\n")
		names = append(names, name)
	}
	return names, os.WriteFile(file, []byte(b.String()), 0o644)
}

func readManifest(ctx context.Context, path string) (name, version string, capabilities []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "manifest").Output()
	if err != nil {
		return "", "", nil, fmt.Errorf("reading its manifest (%s manifest): %w", path, err)
	}
	var m struct {
		Name, Version string
		Capabilities  []string `json:"capabilities"`
	}
	if err := json.Unmarshal(out, &m); err != nil {
		return "", "", nil, fmt.Errorf("its manifest is not JSON: %w", err)
	}
	return m.Name, m.Version, m.Capabilities, nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
