package plugintest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"time"

	"gocloud.dev/blob/fileblob"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/internal/bridge"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// WithStorageLimits sets the plugin's object storage limits, as
// limits { storage_bytes = ..., storage_object_bytes = ... } does in
// plugins.hcl: all its objects together, and one object. Without it, the
// kernel's defaults (10 GiB, 1 GiB) apply.
//
// Since: v1.2
func WithStorageLimits(bytes, objectBytes int64) Option {
	return func(o *options) { o.limits = &blobstore.Limits{Bytes: bytes, ObjectBytes: objectBytes} }
}

// objects is a Harness's object storage: the kernel's blobstore.Store on a
// directory (the kernel's default driver), its index in memory, served to
// the plugin through the Host service's object calls (blobstore.Service,
// as the kernel serves them) over an in-process gRPC connection. Scoping,
// capabilities, limits, write-once and signed URLs are the kernel's code.
type objects struct {
	dir   string // the store's directory
	store *blobstore.Store
	srv   *grpc.Server
	conn  *grpc.ClientConn
	close func() error
}

func (h *Harness) startStorage(limits blobstore.Limits) (pluginv1.HostClient, error) {
	dir, err := os.MkdirTemp("", "plugintest-storage-")
	if err != nil {
		return nil, fmt.Errorf("making the storage directory: %w", err)
	}
	bucket, err := fileblob.OpenBucket(dir, &fileblob.Options{NoTempDir: true})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("opening the storage directory: %w", err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	st := blobstore.New(bucket, blobstore.NewMemoryIndex(), blobstore.Options{
		Limits: func(string) blobstore.Limits { return limits }, SigningKey: key,
	})
	var caps []string
	for _, c := range h.manifest.Capabilities {
		caps = append(caps, string(c))
	}
	srv := grpc.NewServer()
	pluginv1.RegisterHostServer(srv, &blobstore.Service{Store: st, Plugin: h.manifest.Name, Capabilities: caps, Logger: h.logger})
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///plugintest-host",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		srv.Stop()
		bucket.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	h.objects = &objects{dir: dir, store: st, srv: srv, conn: conn, close: func() error {
		err := bucket.Close()
		os.RemoveAll(dir)
		return err
	}}
	return pluginv1.NewHostClient(conn), nil
}

func (s *objects) stop() {
	if s == nil {
		return
	}
	s.conn.Close()
	s.srv.Stop()
	_ = s.close()
}

// Storage is the plugin's object storage of an institution, as
// sdk.Storage gives it to the plugin's handlers: for setting up objects
// and checking what the plugin stored. Like the plugin's, its calls fail
// with sdk.ErrForbidden unless the manifest declares sdk.CapStorage.
//
// Since: v1.2
func (h *Harness) Storage(tenantID string) *sdk.Bucket {
	return h.rt.Storage(tenantID).(*sdk.Bucket)
}

// PlatformStorage is the plugin's object storage of the platform scope
// (Env.PlatformStorage).
//
// Since: v1.2
func (h *Harness) PlatformStorage() *sdk.Bucket { return h.env.PlatformStorage() }

// DoSigned sends a request to a URL the plugin signed (Bucket.SignedURL)
// as a client would, and returns the kernel's answer: the object (GET), or
// 201 with its description (PUT, with body and contentType), or the 403
// problem of a URL that was changed or has expired. A URL the store itself
// signed (S3) does not come out of a Harness.
//
// Since: v1.2
func (h *Harness) DoSigned(method, signedURL, contentType string, body io.Reader) *Result {
	h.t.Helper()
	u, err := url.Parse(signedURL)
	if err != nil || !strings.HasPrefix(u.Path, blobstore.SignedPath) {
		h.t.Fatalf("plugintest: DoSigned: %q is not a URL the kernel signs (%s...)", signedURL, blobstore.SignedPath)
	}
	key := strings.TrimPrefix(u.Path, blobstore.SignedPath)
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		return problemResult(&Problem{Status: http.StatusMethodNotAllowed, Code: "method-not-allowed", Detail: "a signed URL answers GET, HEAD or PUT", Instance: u.Path, Source: "client"})
	}
	if body == nil {
		body = http.NoBody
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, method, signedURL, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	rec := httptest.NewRecorder()
	if err := h.objects.store.ServeSigned(rec, req, key); err != nil {
		if errors.Is(err, blobstore.ErrAfterHeaders) {
			h.t.Fatalf("plugintest: DoSigned: %v", err)
		}
		var se *sdk.Error
		kind := bridge.KindName(err)
		e := &pluginv1.Error{Kind: kind, Detail: err.Error()}
		if errors.As(err, &se) {
			e.Code, e.Detail = se.Code, se.Detail
		}
		res := h.errorResult(e, u.Path, "")
		if kind == "internal" {
			h.t.Fatalf("plugintest: DoSigned: the kernel would answer 500: %v", err)
		}
		return res
	}
	res := rec.Result()
	defer res.Body.Close()
	out, _ := io.ReadAll(res.Body)
	return &Result{Status: res.StatusCode, Header: res.Header, Body: out}
}
