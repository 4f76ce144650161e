package main

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"io"
	"net/http"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
)

// caps are the capabilities the manifest declares, comma-separated ("":
// none), set at link time for the variant that declares none.
var caps = "storage,platform_storage"

func capabilities() []sdk.Capability {
	var out []sdk.Capability
	for _, c := range strings.Split(caps, ",") {
		if c != "" {
			out = append(out, sdk.Capability(c))
		}
	}
	return out
}

// Query and body types of the storage routes. ?platform=1 uses the
// platform scope (Env.PlatformStorage) instead of the institution's.
type (
	blobQuery struct {
		Key      string `query:"key"`
		Platform bool   `query:"platform"`
	}
	blobListQuery struct {
		Prefix   string `query:"prefix"`
		Cursor   string `query:"cursor"`
		Limit    int    `query:"limit"`
		Platform bool   `query:"platform"`
	}
	blobPut struct {
		Key         string `json:"key"`
		Content     string `json:"content"`
		ContentType string `json:"content_type,omitempty"`
		IfNotExists bool   `json:"if_not_exists,omitempty"`
		Platform    bool   `json:"platform,omitempty"`
		// TenantID is for the isolation tests: a hostile client may name
		// another institution; the bucket is the request's whatever it says.
		TenantID string `json:"tenant_id,omitempty"`
	}
	blobSign struct {
		Key         string `json:"key"`
		Method      string `json:"method"`
		ExpiresS    int    `json:"expires_s,omitempty"`
		ContentType string `json:"content_type,omitempty"`
		IfNotExists bool   `json:"if_not_exists,omitempty"`
	}
	bigQuery struct {
		MB   int    `query:"mb" minimum:"1" maximum:"4096"`
		Key  string `query:"key"`
		Keep bool   `query:"keep"`
	}
)

func storageRoutes(p *probe, base, read, write string) []sdk.Route {
	return []sdk.Route{
		{Method: http.MethodPost, Path: base + "/blob", Permission: write, Summary: "Store an object", Request: blobPut{}, Status: http.StatusCreated, Handler: p.blobPut},
		{Method: http.MethodGet, Path: base + "/blob", Permission: read, Summary: "Read an object", Query: blobQuery{}, Handler: p.blobGet},
		{Method: http.MethodGet, Path: base + "/blob/stat", Permission: read, Summary: "Describe an object", Query: blobQuery{}, Handler: p.blobStat},
		{Method: http.MethodGet, Path: base + "/blob/list", Permission: read, Summary: "List objects", Query: blobListQuery{}, Handler: p.blobList},
		{Method: http.MethodDelete, Path: base + "/blob", Permission: write, Summary: "Delete an object", Query: blobQuery{}, Status: http.StatusNoContent, Handler: p.blobDelete},
		{Method: http.MethodPost, Path: base + "/blob/sign", Permission: write, Summary: "Sign a URL", Request: blobSign{}, Handler: p.blobSign},
		{Method: http.MethodPost, Path: base + "/blob/big", Permission: write, Summary: "Stream ?mb= MiB in and out, reporting this process's heap", Query: bigQuery{}, Handler: p.blobBig},
	}
}

func (p *probe) bucket(r *sdk.Request, platform bool) *sdk.Bucket {
	if platform {
		return p.env.PlatformStorage()
	}
	return sdk.Storage(r)
}

func (p *probe) blobPut(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in blobPut
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	obj, err := p.bucket(r, in.Platform).Put(ctx, in.Key, strings.NewReader(in.Content), sdk.PutOptions{ContentType: in.ContentType, IfNotExists: in.IfNotExists})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, obj)
}

func (p *probe) blobGet(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	rd, obj, err := p.bucket(r, r.Query.Get("platform") == "true").Get(ctx, r.Query.Get("key"))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"object": obj, "content": string(b)})
}

func (p *probe) blobStat(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	obj, err := p.bucket(r, r.Query.Get("platform") == "true").Stat(ctx, r.Query.Get("key"))
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, obj)
}

func (p *probe) blobList(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	limit, _ := strconv.Atoi(r.Query.Get("limit"))
	page, err := p.bucket(r, r.Query.Get("platform") == "true").List(ctx, r.Query.Get("prefix"), r.Query.Get("cursor"), limit)
	if err != nil {
		return nil, err
	}
	keys := []string{}
	for _, o := range page.Objects {
		keys = append(keys, o.Key)
	}
	return sdk.JSON(http.StatusOK, map[string]any{"keys": keys, "next_cursor": page.NextCursor})
}

func (p *probe) blobDelete(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	if err := p.bucket(r, r.Query.Get("platform") == "true").Delete(ctx, r.Query.Get("key")); err != nil {
		return nil, err
	}
	return sdk.NoContent()
}

func (p *probe) blobSign(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in blobSign
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	u, err := sdk.Storage(r).SignedURL(ctx, in.Key, in.Method, time.Duration(in.ExpiresS)*time.Second,
		sdk.SignedURLOptions{ContentType: in.ContentType, IfNotExists: in.IfNotExists})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"url": u})
}

// blobBig streams ?mb= MiB of generated bytes into storage and back out,
// and reports the SHA-256 each way and how far this process's heap grew
// above where it started, sampled every 4 MiB on the data's own path
// (not by a timer): what "bounded memory on the plugin's side" means.
func (p *probe) blobBig(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	mb, _ := strconv.Atoi(r.Query.Get("mb"))
	key := r.Query.Get("key")
	if key == "" {
		key = "big/" + strconv.Itoa(mb)
	}
	b := sdk.Storage(r)
	runtime.GC()
	heap := newHeapWatch()

	gen := &generator{left: int64(mb) << 20, hash: sha256.New(), watch: heap}
	start := time.Now()
	obj, err := b.Put(ctx, key, gen, sdk.PutOptions{ContentType: "application/octet-stream"})
	if err != nil {
		return nil, err
	}
	putTime := time.Since(start)
	putPeak := heap.peak

	runtime.GC()
	heap = newHeapWatch()
	start = time.Now()
	rd, _, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	buf := make([]byte, 64<<10)
	var n, next int64
	for {
		k, err := rd.Read(buf)
		h.Write(buf[:k])
		if n += int64(k); n >= next {
			heap.sample()
			next += 4 << 20
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			rd.Close()
			return nil, err
		}
	}
	rd.Close()
	getTime := time.Since(start)
	if r.Query.Get("keep") != "true" {
		if err := b.Delete(ctx, key); err != nil {
			return nil, err
		}
	}
	return sdk.JSON(http.StatusOK, map[string]any{
		"size": obj.Size, "read": n,
		"sha256_sent": hex.EncodeToString(gen.hash.Sum(nil)), "sha256_stored": obj.SHA256, "sha256_read": hex.EncodeToString(h.Sum(nil)),
		"put_heap_growth": putPeak, "get_heap_growth": heap.peak,
		"put_ms": putTime.Milliseconds(), "get_ms": getTime.Milliseconds(),
	})
}

// heapWatch keeps the largest growth of the heap (bytes allocated and not
// yet freed) over its value when the watch began.
type heapWatch struct {
	base, peak uint64
	samples    []metrics.Sample
}

func newHeapWatch() *heapWatch {
	w := &heapWatch{samples: []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}}
	w.base = w.read()
	return w
}

func (w *heapWatch) read() uint64 {
	metrics.Read(w.samples)
	return w.samples[0].Value.Uint64()
}

func (w *heapWatch) sample() {
	if v := w.read(); v > w.base && v-w.base > w.peak {
		w.peak = v - w.base
	}
}

// generator is left bytes of a deterministic pseudo-random stream,
// hashed as they are read.
type generator struct {
	left, next int64
	state      uint64
	hash       hash.Hash
	watch      *heapWatch
	read       int64
}

func (g *generator) Read(p []byte) (int, error) {
	if g.left <= 0 {
		return 0, io.EOF
	}
	n := len(p) &^ 7
	if int64(n) > g.left {
		n = int(g.left) &^ 7
	}
	if n == 0 {
		n = int(min(int64(len(p)), g.left))
		for i := range n {
			p[i] = byte(i)
		}
	} else {
		for i := 0; i < n; i += 8 {
			g.state = g.state*6364136223846793005 + 1442695040888963407
			binary.LittleEndian.PutUint64(p[i:], g.state)
		}
	}
	g.left -= int64(n)
	g.hash.Write(p[:n])
	if g.read += int64(n); g.read >= g.next {
		g.watch.sample()
		g.next += 4 << 20
	}
	return n, nil
}
