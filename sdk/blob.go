package sdk

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// Capability is a host service a plugin declares in its manifest: the
// kernel serves a plugin none it did not declare.
//
// Since: v1.2
type Capability string

const (
	// CapStorage: object storage of the institution a request, event or
	// tenant job is for (Storage).
	CapStorage Capability = wire.CapStorage
	// CapPlatformStorage: object storage of the platform scope, for
	// platform jobs (Env.PlatformStorage).
	CapPlatformStorage Capability = wire.CapPlatformStorage
)

// Bucket is a plugin's object storage in one scope: the objects of one
// institution (Storage), or of the platform (Env.PlatformStorage). The
// kernel keeps the bytes (a directory, or an S3-compatible store), scoped
// to the plugin and the institution: keys are the plugin's own names
// ("lessons/42/slides.pdf"), and one that tries to leave the scope ("..",
// "/abs", empty parts, control characters) is refused with ErrInvalid.
// Content streams both ways in chunks: an object is never held whole in
// memory, on either side.
//
//	obj, err := sdk.Storage(req).Put(ctx, "exports/"+id+".csv", body,
//		sdk.PutOptions{ContentType: "text/csv", IfNotExists: true})
//
// Errors wrap the sentinels of errors.go, with the kernel's code and
// detail, so a handler may return them as they are: ErrNotFound (no such
// object), ErrConflict (IfNotExists and the key exists), ErrTooLarge
// (over the plugin's limits in plugins.hcl; nothing stored), ErrForbidden
// (the manifest does not declare the capability), ErrInvalid (a refused
// key or option), ErrUnavailable.
//
// Since: v1.2
type Bucket struct {
	c     pluginv1.HostClient
	scope *pluginv1.BlobScope
	err   error // why this bucket cannot be used
}

// Object describes a stored object.
//
// Since: v1.2
type Object struct {
	Key         string // within the bucket, as the plugin named it
	Size        int64
	ContentType string
	SHA256      string // of the content, lowercase hex, computed by the kernel as it was stored
	Modified    time.Time
}

// PutOptions are the options of Bucket.Put.
//
// Since: v1.2
type PutOptions struct {
	// ContentType is recorded and served with the object;
	// "" stores application/octet-stream.
	ContentType string
	// IfNotExists stores the object only if the key has none
	// (If-None-Match: *): otherwise ErrConflict and nothing changes.
	IfNotExists bool
}

// SignedURLOptions are the options of a PUT URL (Bucket.SignedURL).
//
// Since: v1.2
type SignedURLOptions struct {
	ContentType string // the media type the upload is stored with; "": the request's
	IfNotExists bool   // refuse the upload if the key has an object
}

// ObjectPage is one page of Bucket.List.
//
// Since: v1.2
type ObjectPage struct {
	Objects []Object
	// NextCursor fetches the next page; "" on the last.
	NextCursor string
}

// Storage returns the object storage of s's institution. The manifest must
// declare CapStorage. Platform work (a JobRun without a tenant) has no
// institution: its calls fail with ErrInvalid; use Env.PlatformStorage.
//
// Since: v1.2
func Storage(s Scope) *Bucket {
	rt := s.runtime()
	if s.Tenant() == "" {
		return &Bucket{err: Errorf(ErrInvalid, "storage: this work is for no institution; platform work uses Env.PlatformStorage")}
	}
	return rt.bucket(&pluginv1.BlobScope{TenantId: s.Tenant()})
}

// PlatformStorage returns the object storage of the platform scope, for
// platform jobs: one for the plugin, whatever the institution. The manifest
// must declare CapPlatformStorage.
//
// Since: v1.2
func (e *Env) PlatformStorage() *Bucket {
	return e.rt.bucket(&pluginv1.BlobScope{Platform: true})
}

func (rt *runtime) bucket(scope *pluginv1.BlobScope) *Bucket {
	if rt == nil || rt.blobs == nil {
		return &Bucket{err: Errorf(ErrUnavailable, "storage: no kernel host services here")}
	}
	return &Bucket{c: rt.blobs, scope: scope}
}

// Put stores the content of r under key, replacing an object there unless
// IfNotExists. It streams r to the kernel in chunks as it reads it; the
// object appears once all of r is stored. A read error of r, or ctx
// ending, aborts the upload and nothing is stored.
func (b *Bucket) Put(ctx context.Context, key string, r io.Reader, o PutOptions) (Object, error) {
	if b.err != nil {
		return Object{}, b.err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := b.c.BlobPut(ctx)
	if err != nil {
		return Object{}, storageError(err)
	}
	msg := &pluginv1.BlobPutRequest{Scope: b.scope, Key: key, ContentType: o.ContentType, IfNotExists: o.IfNotExists}
	buf := make([]byte, chunkSize)
	for first := true; ; first = false {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 || first {
			msg.Data = buf[:n]
			if err := stream.Send(msg); err != nil {
				if err == io.EOF { // the kernel ended the call: its answer says why
					_, err = stream.CloseAndRecv()
				}
				return Object{}, storageError(err)
			}
			msg = &pluginv1.BlobPutRequest{}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return Object{}, rerr // cancel() aborts the upload
		}
	}
	out, err := stream.CloseAndRecv()
	if err != nil {
		return Object{}, storageError(err)
	}
	return object(out), nil
}

// chunkSize is what one message carries (blobstore.ChunkSize).
const chunkSize = 256 << 10

// Get opens an object for reading. The content streams from the kernel as
// the reader is read; close it when done (closing early stops the
// transfer).
func (b *Bucket) Get(ctx context.Context, key string) (io.ReadCloser, Object, error) {
	if b.err != nil {
		return nil, Object{}, b.err
	}
	ctx, cancel := context.WithCancel(ctx)
	stream, err := b.c.BlobGet(ctx, &pluginv1.BlobGetRequest{Scope: b.scope, Key: key})
	if err != nil {
		cancel()
		return nil, Object{}, storageError(err)
	}
	first, err := stream.Recv()
	if err != nil {
		cancel()
		return nil, Object{}, storageError(err)
	}
	return &objectReader{stream: stream, cancel: cancel, buf: first.Data}, object(first.Object), nil
}

type objectReader struct {
	stream pluginv1.Host_BlobGetClient
	cancel context.CancelFunc
	buf    []byte
	err    error
}

func (r *objectReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		m, err := r.stream.Recv()
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			r.err = storageError(err)
		default:
			r.buf = m.Data
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (r *objectReader) Close() error {
	r.cancel()
	if r.err == nil {
		r.err = errors.New("storage: read after Close")
	}
	return nil
}

// Stat describes an object.
func (b *Bucket) Stat(ctx context.Context, key string) (Object, error) {
	if b.err != nil {
		return Object{}, b.err
	}
	out, err := b.c.BlobStat(ctx, &pluginv1.BlobStatRequest{Scope: b.scope, Key: key})
	if err != nil {
		return Object{}, storageError(err)
	}
	return object(out), nil
}

// List returns the objects whose keys start with prefix ("" for all), in
// key order, a page of up to limit (1 to 1000; 0 means 100) at a time:
// pass the page's NextCursor for the next one, "" for the first.
func (b *Bucket) List(ctx context.Context, prefix, cursor string, limit int) (ObjectPage, error) {
	if b.err != nil {
		return ObjectPage{}, b.err
	}
	if limit < 0 || limit > 1000 {
		return ObjectPage{}, Errorf(ErrInvalid, "storage: a page holds 1 to 1000 objects, not %d", limit)
	}
	out, err := b.c.BlobList(ctx, &pluginv1.BlobListRequest{Scope: b.scope, Prefix: prefix, Cursor: cursor, Limit: int32(limit)})
	if err != nil {
		return ObjectPage{}, storageError(err)
	}
	page := ObjectPage{NextCursor: out.NextCursor, Objects: make([]Object, 0, len(out.Objects))}
	for _, o := range out.Objects {
		page.Objects = append(page.Objects, object(o))
	}
	return page, nil
}

// Delete removes an object; ErrNotFound if there is none.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if b.err != nil {
		return b.err
	}
	if _, err := b.c.BlobDelete(ctx, &pluginv1.BlobDeleteRequest{Scope: b.scope, Key: key}); err != nil {
		return storageError(err)
	}
	return nil
}

// SignedURL returns a URL with which a client, holding no other
// credentials, can GET the object at key or PUT one there until expiry
// (at most an hour; 0 means 15 minutes). For GET the object must exist. A
// PUT goes through the kernel, under the plugin's limits, with the
// options of o (at most one). The URL is absolute when the store signs it
// (S3), or a path under the kernel's API (/api/v1/blobs/...) to resolve
// against the API's base URL.
func (b *Bucket) SignedURL(ctx context.Context, key, method string, expiry time.Duration, o ...SignedURLOptions) (string, error) {
	if b.err != nil {
		return "", b.err
	}
	if expiry < 0 || expiry%time.Second != 0 {
		return "", Errorf(ErrInvalid, "storage: a signed URL's expiry is whole seconds, not %s", expiry)
	}
	in := &pluginv1.BlobSignURLRequest{Scope: b.scope, Key: key, Method: strings.ToUpper(method), ExpiresInSeconds: int32(min(expiry/time.Second, 1<<30))}
	switch len(o) {
	case 0:
	case 1:
		in.ContentType, in.IfNotExists = o[0].ContentType, o[0].IfNotExists
	default:
		return "", Errorf(ErrInvalid, "storage: at most one SignedURLOptions")
	}
	if in.Method != http.MethodGet && in.Method != http.MethodPut {
		return "", Errorf(ErrInvalid, "storage: a signed URL is for GET or PUT, not %q", method)
	}
	out, err := b.c.BlobSignURL(ctx, in)
	if err != nil {
		return "", storageError(err)
	}
	return out.Url, nil
}

func object(o *pluginv1.BlobObject) Object {
	if o == nil {
		return Object{}
	}
	return Object{Key: o.Key, Size: o.Size, ContentType: o.ContentType, SHA256: o.Sha256, Modified: time.UnixMilli(o.ModifiedUnixMs).UTC()}
}

// storageError is an sdk error of the kernel's answer to a storage call.
func storageError(err error) error {
	switch status.Code(err) {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	e := wire.StatusError(err)
	if e == nil {
		return err
	}
	for _, k := range kindNames {
		if k.name == e.Kind {
			return &Error{Kind: k.err, Code: e.Code, Detail: "storage: " + e.Detail}
		}
	}
	return errors.New("storage: " + e.Detail)
}
