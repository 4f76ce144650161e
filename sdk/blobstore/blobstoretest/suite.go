// Package blobstoretest is the conformance suite of object storage: one
// set of tests that every pairing of a bucket driver and an Index must
// pass, as River's riverdrivertest runs one suite against every driver.
// The kernel runs it on a directory and on S3 (an in-process S3 server)
// with its Postgres index; sdk/blobstore runs it with the memory index
// that sdk/plugintest uses.
package blobstoretest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// NewStore makes a Store with o on the bucket and index under test. Stores
// of one suite run may share a bucket and an index: every test uses
// plugin names of its own.
type NewStore func(t *testing.T, o blobstore.Options) *blobstore.Store

// clock is a settable time for signed URLs.
type clock struct{ now atomic.Int64 }

func (c *clock) Now() time.Time        { return time.Unix(0, c.now.Load()) }
func (c *clock) Add(d time.Duration)   { c.now.Add(int64(d)) }
func newClock() *clock                 { c := &clock{}; c.now.Store(time.Now().UnixNano()); return c }
func key32() []byte                    { b := make([]byte, 32); _, _ = rand.Read(b); return b }
func plugin() string                   { return "t" + hex.EncodeToString(key32()[:6]) }
func tenant() string                   { return uuidv4() }
func sum(b []byte) string              { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func payload(n int) []byte             { b := make([]byte, n); _, _ = rand.Read(b); return b }
func ctx(t *testing.T) context.Context { return t.Context() }
func opts(c *clock) blobstore.Options  { return blobstore.Options{SigningKey: key32(), Now: c.Now} }
func tscope(t *testing.T, p, ten string) blobstore.Scope {
	s, err := blobstore.TenantScope(p, ten)
	require.NoError(t, err)
	return s
}

func uuidv4() string {
	b := key32()[:16]
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// requireKind asserts an sdk error of kind, with code when given.
func requireKind(t *testing.T, err error, kind error, code string) {
	t.Helper()
	require.ErrorIs(t, err, kind)
	if code != "" {
		var se *sdk.Error
		require.ErrorAs(t, err, &se)
		require.Equal(t, code, se.Code, "%v", err)
	}
}

func read(t *testing.T, st *blobstore.Store, s blobstore.Scope, key string) ([]byte, blobstore.Object) {
	t.Helper()
	r, obj, err := st.Get(ctx(t), s, key)
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return b, obj
}

// bucketKeys lists every key in the bucket under prefix, behind the
// index's back: what is really stored. The directory driver's listing
// fails when a temporary file of a concurrent write goes away under it;
// such a listing is tried again.
func bucketKeys(t *testing.T, st *blobstore.Store, prefix string) []string {
	t.Helper()
	for attempt := 0; ; attempt++ {
		out, err := listBucket(ctx(t), st, prefix)
		if err == nil || attempt == 100 {
			require.NoError(t, err)
			return out
		}
	}
}

func listBucket(c context.Context, st *blobstore.Store, prefix string) ([]string, error) {
	var out []string
	it := st.Bucket().List(&blob.ListOptions{Prefix: prefix})
	for {
		o, err := it.Next(c)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		if !strings.HasSuffix(o.Key, ".tmp") {
			out = append(out, o.Key)
		}
	}
}

// Run runs the suite.
func Run(t *testing.T, newStore NewStore) {
	t.Run("RoundTrip", func(t *testing.T) { t.Parallel(); roundTrip(t, newStore) })
	t.Run("WriteOnce", func(t *testing.T) { t.Parallel(); writeOnce(t, newStore) })
	t.Run("Isolation", func(t *testing.T) { t.Parallel(); isolation(t, newStore) })
	t.Run("HostileKeys", func(t *testing.T) { t.Parallel(); hostileKeys(t, newStore) })
	t.Run("List", func(t *testing.T) { t.Parallel(); list(t, newStore) })
	t.Run("Delete", func(t *testing.T) { t.Parallel(); deletes(t, newStore) })
	t.Run("Quota", func(t *testing.T) { t.Parallel(); quota(t, newStore) })
	t.Run("AbortedUpload", func(t *testing.T) { t.Parallel(); aborted(t, newStore) })
	t.Run("SignedURLs", func(t *testing.T) { t.Parallel(); signed(t, newStore) })
	t.Run("Capabilities", func(t *testing.T) { t.Parallel(); capabilities(t, newStore) })
}

func roundTrip(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	s := tscope(t, plugin(), tenant())
	body := payload(3*blobstore.ChunkSize + 17)
	obj, err := st.Put(ctx(t), s, "lessons/1/slides.pdf", bytes.NewReader(body), blobstore.PutOptions{ContentType: "application/pdf"})
	require.NoError(t, err)
	require.Equal(t, "lessons/1/slides.pdf", obj.Key)
	require.Equal(t, int64(len(body)), obj.Size)
	require.Equal(t, sum(body), obj.SHA256)
	require.Equal(t, "application/pdf", obj.ContentType)
	require.False(t, obj.Modified.IsZero())

	got, gobj := read(t, st, s, "lessons/1/slides.pdf")
	require.Equal(t, body, got)
	require.Equal(t, obj, gobj)
	sobj, err := st.Stat(ctx(t), s, "lessons/1/slides.pdf")
	require.NoError(t, err)
	require.Equal(t, obj, sobj)
	require.Equal(t, []string{s.Prefix() + "lessons/1/slides.pdf"}, bucketKeys(t, st, s.Prefix()), "stored under the scope's prefix")

	// Empty objects, the default media type, replacing.
	obj, err = st.Put(ctx(t), s, "empty", bytes.NewReader(nil), blobstore.PutOptions{})
	require.NoError(t, err)
	require.Equal(t, int64(0), obj.Size)
	require.Equal(t, "application/octet-stream", obj.ContentType)
	require.Equal(t, sum(nil), obj.SHA256)
	obj, err = st.Put(ctx(t), s, "empty", strings.NewReader("now full"), blobstore.PutOptions{ContentType: "text/plain; charset=utf-8"})
	require.NoError(t, err)
	got, _ = read(t, st, s, "empty")
	require.Equal(t, "now full", string(got))
	require.Equal(t, "text/plain; charset=utf-8", obj.ContentType)
	used, err := st.Usage(ctx(t), s.Plugin)
	require.NoError(t, err)
	require.Equal(t, int64(len(body)+len("now full")), used, "a replaced object's bytes are no longer counted")

	_, err = st.Put(ctx(t), s, "x", strings.NewReader("x"), blobstore.PutOptions{ContentType: "not a type"})
	requireKind(t, err, sdk.ErrInvalid, "invalid-content-type")
	_, err = st.Stat(ctx(t), s, "missing")
	requireKind(t, err, sdk.ErrNotFound, "object-not-found")
	_, _, err = st.Get(ctx(t), s, "missing")
	requireKind(t, err, sdk.ErrNotFound, "object-not-found")

	// The platform scope is apart from every institution's.
	ps, err := blobstore.PlatformScope(s.Plugin)
	require.NoError(t, err)
	_, err = st.Put(ctx(t), ps, "lessons/1/slides.pdf", strings.NewReader("platform"), blobstore.PutOptions{})
	require.NoError(t, err)
	got, _ = read(t, st, ps, "lessons/1/slides.pdf")
	require.Equal(t, "platform", string(got))
	got, _ = read(t, st, s, "lessons/1/slides.pdf")
	require.Equal(t, body, got)
}

func writeOnce(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	s := tscope(t, plugin(), tenant())
	once := blobstore.PutOptions{IfNotExists: true}
	_, err := st.Put(ctx(t), s, "receipt.json", strings.NewReader("first"), once)
	require.NoError(t, err)
	_, err = st.Put(ctx(t), s, "receipt.json", strings.NewReader("second"), once)
	requireKind(t, err, sdk.ErrConflict, "object-exists")
	got, _ := read(t, st, s, "receipt.json")
	require.Equal(t, "first", string(got), "a refused write-once changes nothing")

	// The store itself refuses to overwrite (If-None-Match: *): an object
	// in the bucket that the index does not know of is not replaced.
	require.NoError(t, st.Bucket().WriteAll(ctx(t), s.Prefix()+"stray", []byte("stray"), nil))
	_, err = st.Put(ctx(t), s, "stray", strings.NewReader("mine"), once)
	requireKind(t, err, sdk.ErrConflict, "object-exists")
	r, err := st.Bucket().NewReader(ctx(t), s.Prefix()+"stray", nil)
	require.NoError(t, err)
	stray, err := io.ReadAll(r)
	require.NoError(t, err)
	r.Close()
	require.Equal(t, "stray", string(stray))
	_, err = st.Stat(ctx(t), s, "stray")
	requireKind(t, err, sdk.ErrNotFound, "")
	require.NoError(t, st.Bucket().Delete(ctx(t), s.Prefix()+"stray"))

	// Racing writers of one key: exactly one wins, whatever the order.
	const n = 6
	var wg sync.WaitGroup
	var won, lost atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.Put(context.Background(), s, "race", bytes.NewReader(bytes.Repeat([]byte{byte('a' + i)}, 100_000)), once)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, sdk.ErrConflict):
				lost.Add(1)
			default:
				t.Errorf("racing write-once: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int32(1), won.Load())
	require.Equal(t, int32(n-1), lost.Load())
	got, obj := read(t, st, s, "race")
	require.Len(t, got, 100_000)
	require.Equal(t, sum(got), obj.SHA256, "the index describes the stored content")
	used, err := st.Usage(ctx(t), s.Plugin)
	require.NoError(t, err)
	require.Equal(t, int64(len("first")+100_000), used)
}

func isolation(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	pa, pb := plugin(), plugin()
	tx, ty := tenant(), tenant()
	_, err := st.Put(ctx(t), tscope(t, pa, tx), "secret.txt", strings.NewReader("A of X"), blobstore.PutOptions{})
	require.NoError(t, err)
	for name, s := range map[string]blobstore.Scope{
		"another institution":            tscope(t, pa, ty),
		"another plugin":                 tscope(t, pb, tx),
		"another plugin and institution": tscope(t, pb, ty),
	} {
		_, err := st.Stat(ctx(t), s, "secret.txt")
		requireKind(t, err, sdk.ErrNotFound, "")
		_, _, err = st.Get(ctx(t), s, "secret.txt")
		requireKind(t, err, sdk.ErrNotFound, "")
		err = st.Delete(ctx(t), s, "secret.txt")
		requireKind(t, err, sdk.ErrNotFound, "")
		objs, _, err := st.List(ctx(t), s, "", "", 0)
		require.NoError(t, err)
		require.Empty(t, objs, name)
		_, _, err = st.SignURL(ctx(t), s, "secret.txt", blobstore.SignOptions{Method: http.MethodGet})
		requireKind(t, err, sdk.ErrNotFound, "")
	}
	ps, err := blobstore.PlatformScope(pa)
	require.NoError(t, err)
	_, err = st.Stat(ctx(t), ps, "secret.txt")
	requireKind(t, err, sdk.ErrNotFound, "")

	// One institution, however its ID is spelled; no other ID reaches it.
	upper := tscope(t, pa, strings.ToUpper(tx))
	got, _ := read(t, st, upper, "secret.txt")
	require.Equal(t, "A of X", string(got))
	for _, bad := range []string{"", "x", "../" + tx, tx + "/..", "{" + tx + "}", "urn:uuid:" + tx, strings.ReplaceAll(tx, "-", "")} {
		_, err := blobstore.TenantScope(pa, bad)
		requireKind(t, err, sdk.ErrInvalid, "")
	}
	for _, bad := range []string{"", "../x", "A", "a/b", "x" + strings.Repeat("y", 40)} {
		_, err := blobstore.TenantScope(bad, tx)
		requireKind(t, err, sdk.ErrInvalid, "")
		_, err = blobstore.PlatformScope(bad)
		requireKind(t, err, sdk.ErrInvalid, "")
	}
}

// HostileKeys are keys that must be refused, with why.
var HostileKeys = map[string]string{
	"empty":                 "",
	"parent":                "../x",
	"parent deeper":         "a/../../b",
	"parent at the end":     "a/..",
	"dot":                   "a/./b",
	"absolute":              "/etc/passwd",
	"empty part":            "a//b",
	"trailing slash":        "a/",
	"NUL":                   "a\x00b",
	"newline":               "a\nb",
	"DEL":                   "a\x7fb",
	"backslash":             `a\..\b`,
	"not UTF-8":             "a\xffb",
	"another plugin's":      "plugins/other/tenants/00000000-0000-4000-8000-000000000000/x",
	"another institution's": "tenants/00000000-0000-4000-8000-000000000000/x",
	"the platform's":        "platform/x",
	"the kernel's":          "kernel/exports/x",
	"too long":              strings.Repeat("a/", 256) + "b",
	"part too long":         strings.Repeat("a", 201),
	"sidecar":               "x.attrs",
}

func hostileKeys(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	s := tscope(t, plugin(), tenant())
	_, err := st.Put(ctx(t), s, "x", strings.NewReader("x"), blobstore.PutOptions{})
	require.NoError(t, err)
	for name, key := range HostileKeys {
		t.Run(name, func(t *testing.T) {
			_, err := st.Put(ctx(t), s, key, strings.NewReader("evil"), blobstore.PutOptions{})
			requireKind(t, err, sdk.ErrInvalid, "")
			_, _, err = st.Get(ctx(t), s, key)
			requireKind(t, err, sdk.ErrInvalid, "")
			_, err = st.Stat(ctx(t), s, key)
			requireKind(t, err, sdk.ErrInvalid, "")
			err = st.Delete(ctx(t), s, key)
			requireKind(t, err, sdk.ErrInvalid, "")
			_, _, err = st.SignURL(ctx(t), s, key, blobstore.SignOptions{Method: http.MethodPut})
			requireKind(t, err, sdk.ErrInvalid, "")
			if key != "" && key != "a/" && key != "plugins/other/tenants/00000000-0000-4000-8000-000000000000/x"[:8] {
				_, _, err = st.List(ctx(t), s, key, "", 0)
				requireKind(t, err, sdk.ErrInvalid, "")
			}
		})
	}
	require.Equal(t, []string{s.Prefix() + "x"}, bucketKeys(t, st, s.Prefix()))
	for _, k := range bucketKeys(t, st, "") {
		_, _, ok := blobstore.ParseKey(k)
		require.True(t, ok, "%q: nothing was written outside a plugin's scope", k)
	}
	// Keys that look odd but stay inside are fine.
	for _, key := range []string{"..x", "x..", "a/...", "plugins", "kernel.txt", "ünï cödé/ファイル.txt", "a b/c?d#e%20f&g=h"} {
		_, err := st.Put(ctx(t), s, key, strings.NewReader(key), blobstore.PutOptions{})
		require.NoError(t, err, key)
		got, _ := read(t, st, s, key)
		require.Equal(t, key, string(got))
	}
}

func list(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	s := tscope(t, plugin(), tenant())
	keys := []string{"a/1", "a/2", "a/3", "a/4", "a/5", "a/6", "a/7", "b/1", "ab"}
	for _, k := range keys {
		_, err := st.Put(ctx(t), s, k, strings.NewReader(k), blobstore.PutOptions{ContentType: "text/plain"})
		require.NoError(t, err)
	}
	var got []string
	cursor := ""
	pages := 0
	for {
		objs, next, err := st.List(ctx(t), s, "a/", cursor, 3)
		require.NoError(t, err)
		pages++
		for _, o := range objs {
			got = append(got, o.Key)
			require.Equal(t, int64(3), o.Size)
			require.Equal(t, sum([]byte(o.Key)), o.SHA256)
			require.Equal(t, "text/plain", o.ContentType)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, keys[:7], got)
	require.Equal(t, 3, pages)
	all, next, err := st.List(ctx(t), s, "", "", 0)
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, all, len(keys))
	require.Equal(t, "a/1", all[0].Key)
	require.Equal(t, "b/1", all[len(all)-1].Key)
	objs, _, err := st.List(ctx(t), s, "a", "", 0)
	require.NoError(t, err)
	require.Len(t, objs, 8, "a prefix may end within a part")

	_, _, err = st.List(ctx(t), s, "a/", "not base64 !", 3)
	requireKind(t, err, sdk.ErrInvalid, "invalid-cursor")
	_, firstNext, err := st.List(ctx(t), s, "a/", "", 3)
	require.NoError(t, err)
	_, _, err = st.List(ctx(t), s, "b/", firstNext, 3)
	requireKind(t, err, sdk.ErrInvalid, "invalid-cursor")
	for _, limit := range []int{-1, 1001} {
		_, _, err = st.List(ctx(t), s, "", "", limit)
		requireKind(t, err, sdk.ErrInvalid, "")
	}
}

func deletes(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	s := tscope(t, plugin(), tenant())
	_, err := st.Put(ctx(t), s, "gone", strings.NewReader("12345"), blobstore.PutOptions{})
	require.NoError(t, err)
	require.NoError(t, st.Delete(ctx(t), s, "gone"))
	_, err = st.Stat(ctx(t), s, "gone")
	requireKind(t, err, sdk.ErrNotFound, "")
	requireKind(t, st.Delete(ctx(t), s, "gone"), sdk.ErrNotFound, "object-not-found")
	require.Empty(t, bucketKeys(t, st, s.Prefix()))
	used, err := st.Usage(ctx(t), s.Plugin)
	require.NoError(t, err)
	require.Zero(t, used)
	// A write-once key is free again once deleted.
	_, err = st.Put(ctx(t), s, "gone", strings.NewReader("again"), blobstore.PutOptions{IfNotExists: true})
	require.NoError(t, err)
}

// countingReader is an endless stream that counts what was read of it.
type countingReader struct{ n atomic.Int64 }

func (r *countingReader) Read(p []byte) (int, error) {
	r.n.Add(int64(len(p)))
	return len(p), nil
}

func quota(t *testing.T, newStore NewStore) {
	o := opts(newClock())
	o.Limits = func(string) blobstore.Limits { return blobstore.Limits{Bytes: 1000, ObjectBytes: 600} }
	st := newStore(t, o)
	s := tscope(t, plugin(), tenant())
	put := func(key string, n int) error {
		_, err := st.Put(ctx(t), s, key, bytes.NewReader(payload(n)), blobstore.PutOptions{})
		return err
	}
	requireKind(t, put("big", 601), sdk.ErrTooLarge, "object-too-large")
	require.NoError(t, put("a", 500))
	requireKind(t, put("b", 501), sdk.ErrTooLarge, "storage-quota-exceeded")
	require.NoError(t, put("b", 500), "exactly at the quota")
	requireKind(t, put("c", 1), sdk.ErrTooLarge, "storage-quota-exceeded")
	require.NoError(t, put("a", 400), "replacing counts the new size only")
	require.NoError(t, put("c", 100))
	require.Equal(t, []string{s.Prefix() + "a", s.Prefix() + "b", s.Prefix() + "c"}, bucketKeys(t, st, s.Prefix()), "refused objects left nothing behind")
	used, err := st.Usage(ctx(t), s.Plugin)
	require.NoError(t, err)
	require.Equal(t, int64(1000), used)

	// Enforced while the content streams: an endless upload is cut off
	// at the limit, not read to its end.
	o.Limits = func(string) blobstore.Limits { return blobstore.Limits{Bytes: 1 << 40, ObjectBytes: 1 << 20} }
	st = newStore(t, o)
	s = tscope(t, plugin(), tenant())
	var endless countingReader
	_, err = st.Put(ctx(t), s, "endless", &endless, blobstore.PutOptions{})
	requireKind(t, err, sdk.ErrTooLarge, "object-too-large")
	require.LessOrEqual(t, endless.n.Load(), int64(1<<20+blobstore.ChunkSize), "read no further than the limit's chunk")
	_, err = st.Stat(ctx(t), s, "endless")
	requireKind(t, err, sdk.ErrNotFound, "")
	require.Empty(t, bucketKeys(t, st, s.Prefix()))

	// Another plugin's usage is its own.
	other := tscope(t, plugin(), s.Tenant)
	_, err = st.Put(ctx(t), other, "a", bytes.NewReader(payload(1000)), blobstore.PutOptions{})
	require.NoError(t, err)
}

// failingReader gives n bytes, then an error.
type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, errors.New("the network went away")
	}
	k := min(len(p), r.n)
	r.n -= k
	return k, nil
}

func aborted(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	s := tscope(t, plugin(), tenant())
	_, err := st.Put(ctx(t), s, "half", &failingReader{n: 3 * blobstore.ChunkSize / 2}, blobstore.PutOptions{})
	require.Error(t, err)
	_, err = st.Stat(ctx(t), s, "half")
	requireKind(t, err, sdk.ErrNotFound, "")
	// Replacing an object with a broken upload keeps the old one.
	_, err = st.Put(ctx(t), s, "kept", strings.NewReader("old"), blobstore.PutOptions{})
	require.NoError(t, err)
	_, err = st.Put(ctx(t), s, "kept", &failingReader{n: blobstore.ChunkSize + 1}, blobstore.PutOptions{})
	require.Error(t, err)
	c, cancel := context.WithCancel(ctx(t))
	cancel()
	_, err = st.Put(c, s, "kept", strings.NewReader("cancelled"), blobstore.PutOptions{})
	require.Error(t, err)
	got, _ := read(t, st, s, "kept")
	require.Equal(t, "old", string(got))
	require.Equal(t, []string{s.Prefix() + "kept"}, bucketKeys(t, st, s.Prefix()))
}

func capabilities(t *testing.T, newStore NewStore) {
	st := newStore(t, opts(newClock()))
	p, ten := plugin(), tenant()
	scope := &pluginv1.BlobScope{TenantId: ten}
	platform := &pluginv1.BlobScope{Platform: true}
	for _, tc := range []struct {
		name string
		caps []string
		in   *pluginv1.BlobScope
		want codes.Code
	}{
		{"no capability", nil, scope, codes.PermissionDenied},
		{"platform only", []string{"platform_storage"}, scope, codes.PermissionDenied},
		{"storage, platform scope", []string{"storage"}, platform, codes.PermissionDenied},
		{"storage", []string{"storage"}, scope, codes.NotFound},
		{"platform", []string{"platform_storage"}, platform, codes.NotFound},
		{"bad tenant", []string{"storage"}, &pluginv1.BlobScope{TenantId: "../x"}, codes.InvalidArgument},
		{"both", []string{"storage", "platform_storage"}, &pluginv1.BlobScope{TenantId: ten, Platform: true}, codes.InvalidArgument},
		{"bad key", []string{"storage"}, scope, codes.InvalidArgument},
	} {
		t.Run(tc.name, func(t *testing.T) {
			svc := &blobstore.Service{Store: st, Plugin: p, Capabilities: tc.caps}
			key := "missing"
			if tc.name == "bad key" {
				key = "../x"
			}
			_, err := svc.BlobStat(ctx(t), &pluginv1.BlobStatRequest{Scope: tc.in, Key: key})
			require.Equal(t, tc.want, status.Code(err), "%v", err)
			_, err = svc.BlobList(ctx(t), &pluginv1.BlobListRequest{Scope: tc.in})
			if tc.want == codes.NotFound || tc.name == "bad key" {
				require.NoError(t, err)
			} else {
				require.Equal(t, tc.want, status.Code(err), "%v", err)
			}
		})
	}
}
