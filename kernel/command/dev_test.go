package command

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestDev runs `edulure dev` on a database of the test cluster (with
// DATABASE_URL set it starts no Postgres of its own): it seeds the demo
// institution once, keeps the demo passwords it generated, lists the
// plugin binaries it found, and serves until stopped.
func TestDev(t *testing.T) {
	clearEnv(t)
	t.Setenv("DATABASE_URL", emptyDatabase(t))
	data, plugins := t.TempDir(), t.TempDir()
	addr := freeAddr(t)
	t.Setenv("EDULURE_ADDR", addr)

	for range 2 { // a second start finds the demo there
		stop := serving(t, dev, addr, "-data", data, "-plugins", plugins)
		pw, err := os.ReadFile(filepath.Join(data, "demo-passwords"))
		require.NoError(t, err)
		email, password, ok := strings.Cut(strings.Split(string(pw), "\n")[1], " ")
		require.True(t, ok, "%s", pw)
		require.Equal(t, "admin@demo.edulure.test", email)
		res, err := http.Post("http://"+addr+"/api/v1/auth/login", "application/json",
			strings.NewReader(`{"email":"`+email+`","password":"`+password+`","tenant":"demo"}`))
		require.NoError(t, err)
		res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, "the demo admin logs in")
		out, err := stop()
		require.NoError(t, err)
		require.Contains(t, out, "Demo institution \"demo\"")
		require.Contains(t, out, password)
		require.Contains(t, out, "mail catcher: SMTP on 127.0.0.1:")
		require.Contains(t, out, "plugins from "+plugins+":  (listed in "+filepath.Join(data, "plugins.hcl")+")")
	}
	secret, err := os.ReadFile(filepath.Join(data, "secret.key"))
	require.NoError(t, err)
	require.Len(t, strings.TrimSpace(string(secret)), 64, "a generated secret key, kept for the next start")
}

// writeDevPluginsFile lists each binary of the directory with the name
// and version its manifest gives, and its checksum.
func TestDevPluginsFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "greeter")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\n[ \"$1\" = manifest ] && echo '{\"Name\":\"greeter\",\"Version\":\"1.2.3\",\"capabilities\":[\"storage\",\"sign\"]}'\n"), 0o755))
	sum, err := fileSHA256(bin)
	require.NoError(t, err)
	file := filepath.Join(t.TempDir(), "plugins.hcl")
	names, err := writeDevPluginsFile(context.Background(), dir, file, map[string]string{"greeter": `{ greeting = "hi" }`})
	require.NoError(t, err)
	require.Equal(t, []string{"greeter"}, names)
	hcl, err := os.ReadFile(file)
	require.NoError(t, err)
	require.Contains(t, string(hcl), `plugin "greeter" {`)
	require.Contains(t, string(hcl), `version            = "1.2.3"`)
	require.Contains(t, string(hcl), `sha256             = "`+sum+`"`)
	require.Contains(t, string(hcl), `path               = "`+bin+`"`)
	require.Contains(t, string(hcl), `config             = { greeting = "hi" }`, "the operator's configuration given for it")
	require.Contains(t, string(hcl), `capabilities       = ["sign"]`, "the privileged capabilities its manifest declares, allowed for the demo")

	names, err = writeDevPluginsFile(context.Background(), filepath.Join(dir, "none"), file, nil)
	require.NoError(t, err, "a missing directory is no plugins")
	require.Empty(t, names)
}
