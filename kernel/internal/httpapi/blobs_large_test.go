package httpapi_test

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

// A 200 MiB object streams through the plugin protocol (plugin to kernel
// and back) and through the kernel's signed URLs (client to kernel and
// back) with bounded memory on both sides: the plugin reports its heap's
// growth, sampled every 4 MiB on the data's path; this test process, which
// is the kernel, follows its live heap. Not parallel: the heap measured is
// the kernel's alone.
func TestPluginStorageStreamsLargeObjects(t *testing.T) {
	const mb = 200
	const bound = 64 << 20
	file := writePluginsFile(t, "", pluginBlock{variant: probe, requestTimeout: "5m", limits: `storage_object_bytes = "256MiB"`})
	b := setup(t, "EDULURE_PLUGINS_FILE", file, "EDULURE_REQUEST_TIMEOUT", "5m")
	x := b.institution("big")

	stop := heapPeak()
	r := b.do("POST", "/api/v1/probe/blob/big?mb=200&keep=true", x.admin, nil)
	kernelPlugin := stop()
	require.Equal(t, 200, r.Status, "%s", r.Raw)
	require.Equal(t, float64(mb<<20), r.get("size"))
	require.Equal(t, float64(mb<<20), r.get("read"))
	require.Equal(t, r.str("sha256_sent"), r.str("sha256_stored"), "the kernel's SHA-256 is of what the plugin sent")
	require.Equal(t, r.str("sha256_sent"), r.str("sha256_read"))
	putGrowth, getGrowth := r.get("put_heap_growth").(float64), r.get("get_heap_growth").(float64)
	t.Logf("200 MiB through the plugin protocol: plugin heap growth put %.1f MiB, get %.1f MiB; kernel live heap growth %.1f MiB; put %v ms, get %v ms",
		putGrowth/(1<<20), getGrowth/(1<<20), float64(kernelPlugin)/(1<<20), r.get("put_ms"), r.get("get_ms"))
	require.Less(t, putGrowth, float64(bound), "the plugin's heap while putting")
	require.Less(t, getGrowth, float64(bound), "the plugin's heap while getting")
	require.Less(t, kernelPlugin, uint64(bound), "the kernel's live heap")
	want := r.str("sha256_sent")

	// The same object out through a URL the kernel serves, and a new one in.
	s := b.do("POST", "/api/v1/probe/blob/sign", x.admin, map[string]any{"key": "big/200", "method": "GET"})
	require.Equal(t, 200, s.Status, "%s", s.Raw)
	down := s.str("url")
	s = b.do("POST", "/api/v1/probe/blob/sign", x.admin, map[string]any{"key": "big/uploaded", "method": "PUT"})
	require.Equal(t, 200, s.Status, "%s", s.Raw)
	up := s.str("url")

	stop = heapPeak()
	res, err := http.Get(b.url + down)
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, int64(mb<<20), n)
	require.Equal(t, want, hex.EncodeToString(h.Sum(nil)))

	req, err := http.NewRequest("PUT", b.url+up, &sameStream{left: mb << 20})
	require.NoError(t, err)
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	kernelHTTP := stop()
	require.Equal(t, http.StatusCreated, res.StatusCode, "%s", body)
	require.Contains(t, string(body), want, "the upload is the same stream the plugin generated")
	t.Logf("200 MiB down and 200 MiB up through signed URLs: kernel live heap growth %.1f MiB", float64(kernelHTTP)/(1<<20))
	require.Less(t, kernelHTTP, uint64(bound))
}

// sameStream is the test plugin's generator (storage.go): the same bytes,
// so the same SHA-256.
type sameStream struct {
	left  int64
	state uint64
}

func (g *sameStream) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), g.left)) &^ 7
	for i := 0; i < n; i += 8 {
		g.state = g.state*6364136223846793005 + 1442695040888963407
		binary.LittleEndian.PutUint64(p[i:], g.state)
	}
	g.left -= int64(n)
	return n, nil
}
