package messaging_test

import (
	"bufio"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/messaging/internal/messaging"
	"github.com/edulure/edulure/plugins/messaging/mailcatch"
)

// TestRetentionArchiveOfPosts: the archive action on posts (the SDK's
// generic retention with storage): the dry run's count is the
// execution's; each batch's expired posts are stored, write-once, as
// gzipped JSON lines under retention/posts/<date>/, and exactly the rows
// stored are deleted (with their threads, as with delete); held and recent
// posts and another institution's stay; a second execution finds nothing.
func TestRetentionArchiveOfPosts(t *testing.T) {
	e := setup(t)
	h := e.h
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	alice, bob := plugintest.NewID(), plugintest.NewID()
	now := time.Now().UTC()
	old, recent, cutoff := now.AddDate(-3, 0, 0), now.AddDate(0, -2, 0), now.AddDate(-1, 0, 0)
	n := sdk.RetentionBatch + 7 // two batches
	seedThreads(t, h, a, alice, old, n)
	seedThreads(t, h, a, bob, old, 4) // bob is on hold
	seedThreads(t, h, a, alice, recent, 5)
	seedThreads(t, h, b, alice, old, 6)

	req := sdk.RetentionRequest{TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainArchive, DryRun: true, SampleLimit: 3,
		Holds: []sdk.RetentionHold{{Kind: sdk.HoldPerson, ID: bob}}}
	dry, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, int64(n), dry.Matched)
	require.Empty(t, dry.Archived, "a dry run stores nothing")
	page, err := h.Storage(a).List(t.Context(), sdk.RetentionArchivePrefix, "", 100)
	require.NoError(t, err)
	require.Empty(t, page.Objects)

	req.DryRun = false
	run, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, dry.Matched, run.Matched)
	require.Equal(t, dry.Matched, run.Affected)
	require.Len(t, run.Archived, 2, "one object per batch")
	require.Equal(t, int64(9), count(t, h, a, "posts"))
	require.Equal(t, int64(9), count(t, h, a, "comments"), "the thread goes as with delete")
	require.Equal(t, int64(6), count(t, h, b, "posts"), "another institution's posts stay")

	day := now.Format(time.DateOnly)
	ids := map[string]bool{}
	for _, key := range run.Archived {
		require.True(t, strings.HasPrefix(key, "retention/posts/"+day+"/"), key)
		require.True(t, strings.HasSuffix(key, ".jsonl.gz"), key)
		rc, obj, err := h.Storage(a).Get(t.Context(), key)
		require.NoError(t, err)
		require.Equal(t, "application/gzip", obj.ContentType)
		zr, err := gzip.NewReader(rc)
		require.NoError(t, err)
		sc := bufio.NewScanner(zr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var row map[string]any
			require.NoError(t, json.Unmarshal(sc.Bytes(), &row))
			require.Equal(t, alice, row["author_id"], "only the selection: not the held author's")
			require.Equal(t, a, row["tenant_id"])
			require.True(t, strings.HasPrefix(row["body"].(string), "hello "))
			ids[row["id"].(string)] = true
		}
		require.NoError(t, sc.Err())
		_, err = io.Copy(io.Discard, zr)
		require.NoError(t, err)
		rc.Close()
		// Write-once: the archive cannot be overwritten.
		_, err = h.Storage(a).Put(t.Context(), key, strings.NewReader("x"), sdk.PutOptions{IfNotExists: true})
		require.ErrorIs(t, err, sdk.ErrConflict)
	}
	require.Len(t, ids, n, "every archived post once, and each deleted")

	// Read back through the API: listed a page at a time, downloaded
	// through a signed URL (audited); learners and other institutions see
	// nothing of them.
	admin, learner := plugintest.User(a, "admin"), plugintest.User(a, "learner")
	var listed []messaging.Archive
	for cursor := ""; ; {
		var pg sdk.Page[messaging.Archive]
		res := h.Do(admin, "GET", "/api/v1/messaging/archives?limit=1"+cursor, nil)
		require.Equal(t, 200, res.Status, "%s", res.Body)
		res.JSON(t, &pg)
		require.LessOrEqual(t, len(pg.Items), 1)
		listed = append(listed, pg.Items...)
		if pg.NextCursor == "" {
			break
		}
		cursor = "&cursor=" + pg.NextCursor
	}
	require.Len(t, listed, 2)
	for _, x := range listed {
		require.Contains(t, run.Archived, x.Key)
		require.Equal(t, "posts", x.Class)
		require.Equal(t, day, x.Day)
		require.Len(t, x.SHA256, 64)
	}
	var dl messaging.ArchiveDownload
	res := h.Do(admin, "GET", "/api/v1/messaging/archives/download?key="+listed[0].Key, nil)
	require.Equal(t, 200, res.Status, "%s", res.Body)
	res.JSON(t, &dl)
	require.NotEmpty(t, dl.URL)
	require.Equal(t, listed[0].SHA256, dl.SHA256)
	audited := false
	for _, en := range h.AuditEntries() {
		audited = audited || en.Action == "messaging.archive.downloaded" && en.TargetID == listed[0].Key && en.TenantID == a
	}
	require.True(t, audited, "the download is audited")
	require.Equal(t, 403, h.Do(learner, "GET", "/api/v1/messaging/archives", nil).Status)
	require.Equal(t, 403, h.Do(learner, "GET", "/api/v1/messaging/archives/download?key="+listed[0].Key, nil).Status)
	var others sdk.Page[messaging.Archive]
	h.Do(plugintest.User(b, "admin"), "GET", "/api/v1/messaging/archives", nil).JSON(t, &others)
	require.Empty(t, others.Items)
	require.Equal(t, 404, h.Do(plugintest.User(b, "admin"), "GET", "/api/v1/messaging/archives/download?key="+listed[0].Key, nil).Status)
	for _, bad := range []string{"attachments/x", "retention/posts/../../x.jsonl.gz", "retention/posts/2026-12-01/" + strings.Repeat("a", 36) + ".jsonl.gz%00"} {
		require.Equal(t, 422, h.Do(admin, "GET", "/api/v1/messaging/archives/download?key="+bad, nil).Status, bad)
	}
	require.Equal(t, 422, h.Do(admin, "GET", "/api/v1/messaging/archives?cursor=bogus", nil).Status)

	page, err = h.Storage(b).List(t.Context(), sdk.RetentionArchivePrefix, "", 100)
	require.NoError(t, err)
	require.Empty(t, page.Objects, "nothing in another institution's storage")

	again, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Zero(t, again.Matched)
	require.Empty(t, again.Archived)
}

// TestRetentionArchiveStoreFailure: when the archive cannot be stored (the
// plugin's storage quota is too small for it), the batch fails and not one
// row of it is deleted.
func TestRetentionArchiveStoreFailure(t *testing.T) {
	srv, err := mailcatch.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	op := fmt.Sprintf(`{"smtp_host": %q, "smtp_port": %d, "smtp_security": "none", "app_url": "https://app.edulure.test",
		"api_url": "https://api.edulure.test", "sender_email": "no-reply@edulure.test"}`, srv.Host, srv.Port)
	h := plugintest.New(t, messaging.New(), plugintest.WithOperatorConfig(json.RawMessage(op)), plugintest.WithStorageLimits(64, 64))
	a, alice := plugintest.NewTenant(), plugintest.NewID()
	now := time.Now().UTC()
	seedThreads(t, h, a, alice, now.AddDate(-3, 0, 0), 20)

	req := sdk.RetentionRequest{TenantID: a, Class: "posts", Cutoff: now.AddDate(-1, 0, 0), Action: sdk.RetainArchive}
	_, err = h.ApplyRetention(req)
	require.Error(t, err)
	require.Contains(t, err.Error(), "storing the archive")
	require.Equal(t, int64(20), count(t, h, a, "posts"), "nothing deleted")
	require.Equal(t, int64(20), count(t, h, a, "attachments"), "nor what hangs off the posts")
	page, err := h.Storage(a).List(t.Context(), sdk.RetentionArchivePrefix, "", 100)
	require.NoError(t, err)
	require.Empty(t, page.Objects)
}
