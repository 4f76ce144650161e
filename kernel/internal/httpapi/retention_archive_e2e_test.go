package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRetentionArchiveThroughTheKernel: a governance policy archives
// messaging's expired posts (the SDK's generic archive, through the real
// binaries and the kernel's object storage): the dry run counts what the
// execution archives and deletes; the execution's signed record lists the
// archive's keys; the objects, in messaging's storage of the institution,
// hold exactly the deleted posts; another institution's stay.
func TestRetentionArchiveThroughTheKernel(t *testing.T) {
	t.Parallel()
	catcher := startSMTPCatcher(t)
	cfg := fmt.Sprintf(`{ smtp_host = %q, smtp_port = %d, smtp_security = "none" }`, catcher.host, catcher.port)
	b, _ := withPluginsEnv(t, append([]string{}, fastEvents...), pluginBlock{variant: messagingPlugin, config: cfg},
		pluginBlock{variant: governancePlugin, allow: `"retention", "grants", "sign"`})
	a := b.institution("uni")
	other := b.institution("elsewhere")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	spaceOf := func(inst institution) string {
		var space string
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			for _, s := range b.do("GET", "/api/v1/spaces", inst.admin, nil).items() {
				if s["kind"] == "institution" {
					space = s["id"].(string)
				}
			}
			assert.NotEmpty(c, space)
		}, patience, 20*time.Millisecond)
		return space
	}
	post := func(inst institution, n int) {
		space := spaceOf(inst)
		for i := 0; i < n; i++ {
			ok(b.do("POST", "/api/v1/spaces/"+space+"/posts", inst.admin, map[string]any{"body": fmt.Sprintf("Archived notice %d", i), "kind": "post"}), 201)
		}
	}
	post(a, 5)
	post(other, 3)
	_, err := b.pool.Exec(t.Context(), `UPDATE plugin_messaging.posts SET created_at = now() - interval '90 days'`)
	require.NoError(t, err)
	post(a, 2) // recent: kept

	ok(b.do("PUT", "/api/v1/governance/retention/policies/messaging/posts", a.admin, map[string]any{"period_days": 30, "action": "archive"}), 200)
	dry := ok(b.do("POST", "/api/v1/governance/retention/dry-run", a.admin, nil), 200)
	require.EqualValues(t, 5, dry.get("matched"), "%s", dry.Raw)
	ex := ok(b.do("POST", "/api/v1/governance/retention/executions", a.admin, map[string]any{}), 201)
	require.Equal(t, "succeeded", ex.str("status"), "%s", ex.Raw)
	require.EqualValues(t, 5, ex.get("matched"))
	require.EqualValues(t, 5, ex.get("affected"))
	require.Equal(t, 2, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1`, a.id))
	require.Equal(t, 3, b.count(`SELECT count(*) FROM plugin_messaging.posts WHERE tenant_id = $1`, other.id))

	got := ok(b.do("GET", "/api/v1/governance/retention/executions/"+ex.str("id"), a.admin, nil), 200)
	var doc struct {
		Results []struct {
			Plugin   string   `json:"plugin"`
			Class    string   `json:"class"`
			Archived []string `json:"archived"`
		} `json:"results"`
	}
	require.NoError(t, json.Unmarshal([]byte(got.str("payload")), &doc), "%s", got.Raw)
	var keys []string
	for _, r := range doc.Results {
		if r.Plugin == "messaging" && r.Class == "posts" {
			keys = r.Archived
		}
	}
	require.Len(t, keys, 1, "one batch, one object: %s", got.str("payload"))
	require.True(t, strings.HasPrefix(keys[0], "retention/posts/"+time.Now().UTC().Format(time.DateOnly)+"/"), keys[0])

	dir := strings.TrimPrefix(b.kernel.Config.BlobURL, "file://")
	var found []string
	require.NoError(t, filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(filepath.ToSlash(path), "/retention/posts/") && !strings.HasSuffix(path, ".attrs") { // .attrs: the file store's metadata
			found = append(found, path)
		}
		return err
	}))
	require.Len(t, found, 1, "the archive, and only in the institution's messaging storage")
	require.Contains(t, filepath.ToSlash(found[0]), "/plugins/messaging/tenants/"+a.id+"/"+keys[0])
	raw, err := os.ReadFile(found[0])
	require.NoError(t, err)
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	require.NoError(t, err)
	lines, err := io.ReadAll(zr)
	require.NoError(t, err)
	rows := strings.Split(strings.TrimSuffix(string(lines), "\n"), "\n")
	require.Len(t, rows, 5)
	for _, l := range rows {
		var row map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &row))
		require.Equal(t, a.id, row["tenant_id"])
		require.Contains(t, row["body_text"], "Archived notice")
	}
}
