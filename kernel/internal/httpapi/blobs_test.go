package httpapi_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk/blobstore"
)

// Plugins' object storage through a real kernel and plugin processes:
// scoped to the plugin and the request's institution whatever keys and IDs
// a client sends, write-once, quotas, capabilities, and the URLs the
// kernel signs and serves.
func TestPluginStorage(t *testing.T) {
	t.Parallel()
	b, _ := withPlugins(t,
		pluginBlock{variant: probe, limits: "storage_bytes = 2000\n    storage_object_bytes = \"1KB\""},
		pluginBlock{variant: variant{name: "other", version: "1.0.0"}},
		pluginBlock{variant: variant{name: "bare", version: "1.0.0", caps: "none"}},
		pluginBlock{variant: variant{name: "tenanted", version: "1.0.0", caps: "storage"}},
	)
	x, y := b.institution("xu"), b.institution("yu")
	put := func(tok, plugin string, body map[string]any) response {
		return b.do("POST", "/api/v1/"+plugin+"/blob", tok, body)
	}
	get := func(tok, plugin, key string, platform bool) response {
		return b.do("GET", "/api/v1/"+plugin+"/blob?key="+url.QueryEscape(key)+fmt.Sprintf("&platform=%v", platform), tok, nil)
	}

	r := put(x.admin, "probe", map[string]any{"key": "notes/a.txt", "content": "alpha", "content_type": "text/plain"})
	require.Equal(t, 201, r.Status, "%s", r.Raw)
	sum := sha256.Sum256([]byte("alpha"))
	require.Equal(t, hex.EncodeToString(sum[:]), r.str("SHA256"))
	require.Equal(t, float64(5), r.get("Size"))
	r = get(x.learner, "probe", "notes/a.txt", false)
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, "alpha", r.str("content"))
	require.Equal(t, "text/plain", r.str("object", "ContentType"))

	t.Run("institutions and plugins are apart", func(t *testing.T) {
		requireProblem(t, get(y.admin, "probe", "notes/a.txt", false), 404, "object-not-found")
		requireProblem(t, get(x.admin, "other", "notes/a.txt", false), 404, "object-not-found")
		requireProblem(t, get(x.admin, "probe", "notes/a.txt", true), 404, "object-not-found")
		// A body naming institution X stores in Y's scope: the request's.
		r := put(y.admin, "probe", map[string]any{"key": "notes/a.txt", "content": "evil", "tenant_id": x.id})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		require.Equal(t, "alpha", get(x.admin, "probe", "notes/a.txt", false).str("content"))
		require.Equal(t, "evil", get(y.admin, "probe", "notes/a.txt", false).str("content"))
		for _, key := range []string{
			"../" + x.id + "/notes/a.txt",
			"../../other/tenants/" + x.id + "/notes/a.txt",
			"/plugins/probe/tenants/" + x.id + "/notes/a.txt",
			"plugins/probe/tenants/" + x.id + "/notes/a.txt",
			"tenants/" + x.id + "/notes/a.txt",
			"notes//a.txt", "notes/./a.txt", `notes\a.txt`, "kernel/x", strings.Repeat("k", 513),
		} {
			requireProblem(t, get(y.admin, "probe", key, false), 422, "invalid-object-key")
			requireProblem(t, put(y.admin, "probe", map[string]any{"key": key, "content": "evil"}), 422, "invalid-object-key")
		}
		require.Equal(t, "alpha", get(x.admin, "probe", "notes/a.txt", false).str("content"))
		// The bucket holds each where the kernel put it.
		var keys []string
		rows, err := b.pool.Query(context.Background(), "SELECT key FROM kernel.blob_objects ORDER BY key")
		require.NoError(t, err)
		for rows.Next() {
			var k string
			require.NoError(t, rows.Scan(&k))
			keys = append(keys, k)
		}
		require.NoError(t, rows.Err())
		require.ElementsMatch(t, []string{"plugins/probe/tenants/" + x.id + "/notes/a.txt", "plugins/probe/tenants/" + y.id + "/notes/a.txt"}, keys)
	})

	t.Run("platform scope", func(t *testing.T) {
		r := put(x.admin, "probe", map[string]any{"key": "shared/catalogue.json", "content": "{}", "platform": true})
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		require.Equal(t, "{}", get(y.admin, "probe", "shared/catalogue.json", true).str("content"), "one platform scope per plugin")
		requireProblem(t, get(x.admin, "probe", "shared/catalogue.json", false), 404, "object-not-found")
		requireProblem(t, get(x.admin, "other", "shared/catalogue.json", true), 404, "object-not-found")
		require.Equal(t, 204, b.do("DELETE", "/api/v1/probe/blob?platform=true&key=shared/catalogue.json", x.admin, nil).Status)
	})

	t.Run("capabilities", func(t *testing.T) {
		r := put(x.admin, "bare", map[string]any{"key": "a", "content": "a"})
		requireProblem(t, r, 403, "forbidden")
		require.Contains(t, r.str("detail"), `did not declare the capability "storage"`)
		requireProblem(t, get(x.admin, "bare", "a", false), 403, "forbidden")
		r = put(x.admin, "tenanted", map[string]any{"key": "a", "content": "a", "platform": true})
		requireProblem(t, r, 403, "forbidden")
		require.Contains(t, r.str("detail"), `did not declare the capability "platform_storage"`)
		require.Equal(t, 201, put(x.admin, "tenanted", map[string]any{"key": "a", "content": "a"}).Status)
		require.Equal(t, 204, b.do("DELETE", "/api/v1/tenanted/blob?key=a", x.admin, nil).Status)
	})

	t.Run("write-once", func(t *testing.T) {
		body := map[string]any{"key": "receipts/1.json", "content": "first", "if_not_exists": true}
		require.Equal(t, 201, put(x.admin, "probe", body).Status)
		body["content"] = "second"
		requireProblem(t, put(x.admin, "probe", body), 409, "object-exists")
		require.Equal(t, "first", get(x.admin, "probe", "receipts/1.json", false).str("content"))
	})

	t.Run("list and delete", func(t *testing.T) {
		for i := range 5 {
			require.Equal(t, 201, put(y.admin, "probe", map[string]any{"key": fmt.Sprintf("list/%d", i), "content": "l"}).Status)
		}
		var keys []string
		cursor := ""
		for {
			r := b.do("GET", "/api/v1/probe/blob/list?prefix=list/&limit=2&cursor="+url.QueryEscape(cursor), y.admin, nil)
			require.Equal(t, 200, r.Status, "%s", r.Raw)
			for _, k := range r.get("keys").([]any) {
				keys = append(keys, k.(string))
			}
			if cursor = r.str("next_cursor"); cursor == "" {
				break
			}
		}
		require.Equal(t, []string{"list/0", "list/1", "list/2", "list/3", "list/4"}, keys)
		r := b.do("GET", "/api/v1/probe/blob/list?prefix=list/", x.admin, nil)
		require.Empty(t, r.get("keys"), "X sees none of Y's")
		for i := range 5 {
			require.Equal(t, 204, b.do("DELETE", fmt.Sprintf("/api/v1/probe/blob?key=list/%d", i), y.admin, nil).Status)
		}
		requireProblem(t, b.do("DELETE", "/api/v1/probe/blob?key=list/0", y.admin, nil), 404, "object-not-found")
	})

	t.Run("quota", func(t *testing.T) {
		// probe: 1000 bytes an object (1KB), 2000 in all.
		r := put(x.admin, "probe", map[string]any{"key": "q/big", "content": strings.Repeat("b", 1001)})
		requireProblem(t, r, 413, "object-too-large")
		requireProblem(t, b.do("GET", "/api/v1/probe/blob/stat?key=q/big", x.admin, nil), 404, "object-not-found")
		var used int64
		require.NoError(t, b.pool.QueryRow(context.Background(), "SELECT bytes FROM kernel.blob_usage WHERE plugin = 'probe'").Scan(&used))
		for i, room := 0, 2000-used; room > 0; i++ {
			n := min(room, 1000)
			require.Equal(t, 201, put(x.admin, "probe", map[string]any{"key": fmt.Sprintf("q/fill%d", i), "content": strings.Repeat("f", int(n))}).Status)
			room -= n
		}
		r = put(y.admin, "probe", map[string]any{"key": "q/one-more", "content": "1"})
		requireProblem(t, r, 413, "storage-quota-exceeded")
		require.Contains(t, r.str("detail"), "storage quota of 2000 bytes")
		require.Equal(t, 201, put(x.admin, "other", map[string]any{"key": "q/one-more", "content": "1"}).Status, "another plugin's quota is its own")
		require.Equal(t, 204, b.do("DELETE", "/api/v1/probe/blob?key=q/fill0", x.admin, nil).Status)
		require.Equal(t, 201, put(y.admin, "probe", map[string]any{"key": "q/one-more", "content": "1"}).Status, "room again once deleted")
	})

	t.Run("signed URLs", func(t *testing.T) {
		sign := func(body map[string]any) string {
			r := b.do("POST", "/api/v1/probe/blob/sign", x.admin, body)
			require.Equal(t, 200, r.Status, "%s", r.Raw)
			return r.str("url")
		}
		raw := func(method, u, contentType, body string) response {
			req, err := http.NewRequest(method, b.url+u, strings.NewReader(body))
			require.NoError(t, err)
			if contentType != "" {
				req.Header.Set("Content-Type", contentType)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			out, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			return response{Status: res.StatusCode, Header: res.Header, Raw: out, Body: decodeJSON(out)}
		}
		up := sign(map[string]any{"key": "uploads/essay.txt", "method": "PUT", "expires_s": 300, "content_type": "text/plain", "if_not_exists": true})
		require.True(t, strings.HasPrefix(up, "/api/v1/blobs/plugins/probe/tenants/"+x.id+"/uploads/essay.txt?"), up)
		r := raw("PUT", up, "text/html", "my essay")
		require.Equal(t, 201, r.Status, "%s", r.Raw)
		require.Equal(t, "my essay", get(x.admin, "probe", "uploads/essay.txt", false).str("content"))
		require.Equal(t, "text/plain", get(x.admin, "probe", "uploads/essay.txt", false).str("object", "ContentType"))
		requireProblem(t, raw("PUT", up, "", "again"), 409, "object-exists")

		down := sign(map[string]any{"key": "uploads/essay.txt", "method": "GET", "expires_s": 60})
		r = raw("GET", down, "", "")
		require.Equal(t, 200, r.Status, "%s", r.Raw)
		require.Equal(t, "my essay", string(r.Raw))
		require.Equal(t, "text/plain", r.Header.Get("Content-Type"))
		require.Equal(t, "nosniff", r.Header.Get("X-Content-Type-Options"))
		require.Contains(t, r.Header.Get("Content-Security-Policy"), "sandbox")
		require.Equal(t, 200, raw("HEAD", down, "", "").Status)

		// Changed or expired URLs: 403 problem+json, and nothing served.
		other := strings.Replace(down, x.id, y.id, 1)
		requireProblem(t, raw("GET", other, "", ""), 403, "signed-url-invalid")
		requireProblem(t, raw("GET", strings.Replace(down, "essay", "essaz", 1), "", ""), 403, "signed-url-invalid")
		requireProblem(t, raw("GET", strings.Replace(down, "expires=", "expires=9", 1), "", ""), 403, "signed-url-invalid")
		requireProblem(t, raw("PUT", down, "", "overwrite"), 403, "signed-url-invalid")
		requireProblem(t, raw("GET", "/api/v1/blobs/plugins/probe/tenants/"+x.id+"/uploads/essay.txt", "", ""), 403, "signed-url-invalid")
		requireProblem(t, raw("DELETE", down, "", ""), 405, "method-not-allowed")
		expired := kernelSigned(t, blobstore.Grant{Method: "GET", Key: "plugins/probe/tenants/" + x.id + "/uploads/essay.txt", Expires: time.Now().Add(-time.Second)})
		requireProblem(t, raw("GET", expired, "", ""), 403, "signed-url-expired")
		require.Equal(t, "my essay", get(x.admin, "probe", "uploads/essay.txt", false).str("content"))

		// Over the plugin's limits through a URL, as through the plugin.
		big := sign(map[string]any{"key": "uploads/big", "method": "PUT"})
		requireProblem(t, raw("PUT", big, "", strings.Repeat("x", 1001)), 413, "object-too-large")
		requireProblem(t, b.do("GET", "/api/v1/probe/blob/stat?key=uploads/big", x.admin, nil), 404, "object-not-found")
		// Bad requests to sign.
		requireProblem(t, b.do("POST", "/api/v1/probe/blob/sign", x.admin, map[string]any{"key": "uploads/essay.txt", "method": "GET", "expires_s": 3601}), 422, "invalid-request")
		requireProblem(t, b.do("POST", "/api/v1/probe/blob/sign", x.admin, map[string]any{"key": "uploads/essay.txt", "method": "DELETE"}), 422, "invalid-request")
		requireProblem(t, b.do("POST", "/api/v1/probe/blob/sign", x.admin, map[string]any{"key": "missing", "method": "GET"}), 404, "object-not-found")
	})
}

// kernelSigned signs a grant as the test kernel does (its URL key is
// derived from EDULURE_SECRET_KEY): for URLs no plugin would ask for, such
// as one already expired.
func kernelSigned(t *testing.T, g blobstore.Grant) string {
	secret, err := hex.DecodeString(strings.Repeat("ab", 32))
	require.NoError(t, err)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte("edulure blob URL signing key"))
	return blobstore.NewSigner(mac.Sum(nil)).URL(g)
}

func decodeJSON(b []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

// heapPeak follows this process's live heap (as of each garbage
// collection) until stop, and returns its largest growth over the value
// when it started. The live heap, not the allocated one: in a test process
// with a large heap, garbage between collections says nothing of what a
// transfer holds on to.
func heapPeak() (stop func() uint64) {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	base := s[0].Value.Uint64()
	var peak uint64
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > base && v-base > peak {
				peak = v - base
			}
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	var once sync.Once
	return func() uint64 {
		once.Do(func() { close(done); <-finished })
		return peak
	}
}
