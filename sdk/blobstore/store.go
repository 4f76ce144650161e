package blobstore

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"

	"github.com/edulure/edulure/sdk"
)

// ChunkSize is how much of an object one message of BlobPut or BlobGet
// carries, and what Store reads and writes at a time.
const ChunkSize = 256 << 10

// MaxChunkSize is the most one BlobPut message may carry.
const MaxChunkSize = 1 << 20

// Limits bound one plugin's storage (plugins.hcl: limits { storage_bytes,
// storage_object_bytes }).
type Limits struct {
	Bytes       int64 // all the plugin's objects together
	ObjectBytes int64 // one object
}

// DefaultLimits apply when plugins.hcl sets none.
var DefaultLimits = Limits{Bytes: 10 << 30, ObjectBytes: 1 << 30}

// Object describes a stored object, with the key the plugin named.
type Object struct {
	Key         string    `json:"key"`
	Size        int64     `json:"size"`
	ContentType string    `json:"content_type"`
	SHA256      string    `json:"sha256"`
	Modified    time.Time `json:"modified"`
}

// PutOptions are a Put's options.
type PutOptions struct {
	ContentType string // "" stores application/octet-stream
	IfNotExists bool   // write-once: ErrConflict if the key has an object
}

// Store is the object storage of every plugin on one bucket: keys are
// scoped (Scope), quotas enforced while an object streams in, its SHA-256
// computed on the way, and an object appears only once all of it is
// stored and recorded.
type Store struct {
	bucket *blob.Bucket
	index  Index
	limits func(plugin string) Limits
	signer *Signer
	now    func() time.Time
}

// Options configure a Store.
type Options struct {
	// Limits returns a plugin's limits; nil: DefaultLimits for all.
	Limits func(plugin string) Limits
	// SigningKey signs the URLs the kernel serves (at least 32 secret bytes).
	SigningKey []byte
	// Now is the clock of signed URLs; nil: time.Now.
	Now func() time.Time
}

// New makes a Store on bucket, recording objects in index.
func New(bucket *blob.Bucket, index Index, o Options) *Store {
	st := &Store{bucket: bucket, index: index, limits: o.Limits, signer: NewSigner(o.SigningKey), now: o.Now}
	if st.limits == nil {
		st.limits = func(string) Limits { return DefaultLimits }
	}
	if st.now == nil {
		st.now = time.Now
	}
	return st
}

// Usage is the bytes plugin's objects take.
func (st *Store) Usage(ctx context.Context, plugin string) (int64, error) {
	return st.index.Usage(ctx, plugin)
}

// Bucket is the store's bucket.
func (st *Store) Bucket() *blob.Bucket { return st.bucket }

// Signer signs and checks the store's URLs: the kernel signs with it the
// download URLs of its own objects (KernelPrefix), which it serves itself.
func (st *Store) Signer() *Signer { return st.signer }

// Now is the store's clock (Options.Now).
func (st *Store) Now() time.Time { return st.now() }

func (st *Store) object(s Scope, e Entry) Object {
	return Object{Key: strings.TrimPrefix(e.Key, s.Prefix()), Size: e.Size, ContentType: e.ContentType, SHA256: e.SHA256, Modified: e.Modified}
}

func objectNotFound(key string) error {
	return &sdk.Error{Kind: sdk.ErrNotFound, Code: "object-not-found", Detail: "no object " + quote(key)}
}

// lookup is the entry of key, with a not-found error that names key as the
// plugin wrote it.
func (st *Store) lookup(ctx context.Context, s Scope, key string) (string, Entry, error) {
	full, err := s.Key(key)
	if err != nil {
		return "", Entry{}, err
	}
	e, err := st.index.Lookup(ctx, full)
	if errors.Is(err, sdk.ErrNotFound) {
		return full, Entry{}, objectNotFound(key)
	}
	if err != nil {
		return full, Entry{}, unavailable("reading the object index", err)
	}
	return full, e, nil
}

// unavailable is the error of a store or index that failed: the plugin
// and the client learn what failed, the kernel's log why (Error has the
// cause: a path, an endpoint).
func unavailable(doing string, err error) error {
	return &storeError{
		sdk:   &sdk.Error{Kind: sdk.ErrUnavailable, Code: "storage-unavailable", Detail: doing + " failed; retry shortly"},
		cause: err,
	}
}

type storeError struct {
	sdk   *sdk.Error
	cause error
}

func (e *storeError) Error() string   { return fmt.Sprintf("%s: %v", e.sdk.Detail, e.cause) }
func (e *storeError) Unwrap() []error { return []error{e.sdk, e.cause} }

// CheckContentType refuses a media type that does not parse or is longer
// than 255 bytes.
func CheckContentType(ct string) error {
	if ct == "" {
		return nil
	}
	if len(ct) > 255 {
		return sdk.Errorf(sdk.ErrInvalid, "content type is %d bytes long; at most 255", len(ct))
	}
	if _, _, err := mime.ParseMediaType(ct); err != nil || strings.ContainsAny(ct, "\r\n") {
		return &sdk.Error{Kind: sdk.ErrInvalid, Code: "invalid-content-type", Detail: "content type " + quote(ct) + " is not a media type such as application/pdf"}
	}
	return nil
}

// Put stores the content of r under key, streaming: at most ChunkSize of
// it is held at a time. It refuses an object over the plugin's
// ObjectBytes, or that would take its usage over Bytes, as soon as the
// stream crosses the limit (ErrTooLarge; nothing is stored), and with
// IfNotExists an existing key (ErrConflict, before and after the stream:
// of two racing writers one wins). An error reading r aborts the Put and
// stores nothing.
func (st *Store) Put(ctx context.Context, s Scope, key string, r io.Reader, o PutOptions) (Object, error) {
	full, old, err := st.lookup(ctx, s, key)
	exists := err == nil
	if err != nil && !errors.Is(err, sdk.ErrNotFound) {
		return Object{}, err
	}
	if exists && o.IfNotExists {
		return Object{}, conflict(key)
	}
	if err := CheckContentType(o.ContentType); err != nil {
		return Object{}, err
	}
	ct := o.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	lim := st.limits(s.Plugin)
	used, err := st.index.Usage(ctx, s.Plugin)
	if err != nil {
		return Object{}, unavailable("reading the plugin's storage usage", err)
	}
	if exists {
		used -= old.Size
	}
	fits := func(others, size int64) error {
		if size > lim.ObjectBytes {
			return &sdk.Error{Kind: sdk.ErrTooLarge, Code: "object-too-large", Detail: fmt.Sprintf("the object is larger than plugin %q may store in one object (%d bytes)", s.Plugin, lim.ObjectBytes)}
		}
		if others+size > lim.Bytes {
			return &sdk.Error{Kind: sdk.ErrTooLarge, Code: "storage-quota-exceeded", Detail: fmt.Sprintf("storing the object would take plugin %q over its storage quota of %d bytes (%d in use)", s.Plugin, lim.Bytes, others)}
		}
		return nil
	}

	// The writer's context aborts it: cancelled, Close stores nothing.
	wctx, abort := context.WithCancel(ctx)
	defer abort()
	w, err := st.bucket.NewWriter(wctx, full, &blob.WriterOptions{
		ContentType: ct, IfNotExist: o.IfNotExists, DisableContentTypeDetection: true,
		BufferSize: 5 << 20, MaxConcurrency: 1,
	})
	if err != nil {
		return Object{}, unavailable("opening the object for writing", err)
	}
	closed := false
	defer func() {
		if !closed {
			abort()
			_ = w.Close()
		}
	}()
	h := sha256.New()
	buf := make([]byte, ChunkSize)
	var size int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			size += int64(n)
			if err := fits(used, size); err != nil {
				return Object{}, err
			}
			h.Write(buf[:n])
			if _, err := w.Write(buf[:n]); err != nil {
				if ctx.Err() != nil {
					return Object{}, ctx.Err() // the caller went away
				}
				return Object{}, unavailable("writing the object", err)
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return Object{}, readError(rerr)
		}
	}
	e := Entry{Key: full, Plugin: s.Plugin, Tenant: s.Tenant, Size: size, ContentType: ct, SHA256: hex.EncodeToString(h.Sum(nil)), Modified: st.now().UTC().Truncate(time.Millisecond)}
	err = st.index.Commit(ctx, e, o.IfNotExists, func(others int64) error { return fits(others, size) }, func() error {
		closed = true
		if err := w.Close(); err != nil {
			switch {
			case gcerrors.Code(err) == gcerrors.FailedPrecondition:
				return ErrExists
			case ctx.Err() != nil:
				return ctx.Err()
			}
			return unavailable("storing the object", err)
		}
		return nil
	})
	switch {
	case errors.Is(err, ErrExists):
		return Object{}, conflict(key)
	case err != nil:
		var se *sdk.Error
		if errors.As(err, &se) || ctx.Err() != nil {
			return Object{}, err // the limits', the store's (unavailable), or a cancellation
		}
		return Object{}, unavailable("recording the object", err)
	}
	return st.object(s, e), nil
}

func conflict(key string) error {
	return &sdk.Error{Kind: sdk.ErrConflict, Code: "object-exists", Detail: "an object " + quote(key) + " exists, and the write was to create it only"}
}

// readError is the error of a Put whose content could not be read: the
// sdk error the reader gave, or the reader's failure as such.
func readError(err error) error {
	var se *sdk.Error
	if errors.As(err, &se) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &sdk.Error{Kind: sdk.ErrBadRequest, Code: "upload-failed", Detail: "reading the object's content failed: " + err.Error()}
}

// Get opens an object for reading; close the reader.
func (st *Store) Get(ctx context.Context, s Scope, key string) (io.ReadCloser, Object, error) {
	full, e, err := st.lookup(ctx, s, key)
	if err != nil {
		return nil, Object{}, err
	}
	r, err := st.bucket.NewReader(ctx, full, nil)
	if gcerrors.Code(err) == gcerrors.NotFound {
		return nil, Object{}, objectNotFound(key)
	}
	if err != nil {
		return nil, Object{}, unavailable("opening the object", err)
	}
	return r, st.object(s, e), nil
}

// Stat describes an object.
func (st *Store) Stat(ctx context.Context, s Scope, key string) (Object, error) {
	_, e, err := st.lookup(ctx, s, key)
	if err != nil {
		return Object{}, err
	}
	return st.object(s, e), nil
}

// List limits.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// List returns up to limit objects whose keys start with prefix, in key
// order, after the page that cursor (the previous page's next cursor; ""
// for the first) ends; next is "" on the last page.
func (st *Store) List(ctx context.Context, s Scope, prefix, cursor string, limit int) (objects []Object, next string, err error) {
	if err := CheckPrefix(prefix); err != nil {
		return nil, "", err
	}
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit < 1 || limit > MaxListLimit:
		return nil, "", sdk.Errorf(sdk.ErrInvalid, "limit must be from 1 to %d, got %d", MaxListLimit, limit)
	}
	after := ""
	if cursor != "" {
		b, err := base64.RawURLEncoding.DecodeString(cursor)
		if err != nil || CheckKey(string(b)) != nil || !strings.HasPrefix(string(b), prefix) {
			return nil, "", &sdk.Error{Kind: sdk.ErrInvalid, Code: "invalid-cursor", Detail: "cursor is not the next_cursor of a page of this list"}
		}
		after = s.Prefix() + string(b)
	}
	entries, err := st.index.List(ctx, s.Prefix()+prefix, after, limit+1)
	if err != nil {
		return nil, "", unavailable("listing objects", err)
	}
	more := len(entries) > limit
	if more {
		entries = entries[:limit]
	}
	objects = make([]Object, 0, len(entries))
	for _, e := range entries {
		objects = append(objects, st.object(s, e))
	}
	if more {
		next = base64.RawURLEncoding.EncodeToString([]byte(objects[len(objects)-1].Key))
	}
	return objects, next, nil
}

// Delete removes an object (ErrNotFound if there is none).
func (st *Store) Delete(ctx context.Context, s Scope, key string) error {
	full, err := s.Key(key)
	if err != nil {
		return err
	}
	err = st.index.Remove(ctx, full, func() error {
		if err := st.bucket.Delete(ctx, full); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return unavailable("deleting the object", err)
		}
		return nil
	})
	if errors.Is(err, sdk.ErrNotFound) {
		return objectNotFound(key)
	}
	var se *sdk.Error
	if err != nil && !errors.As(err, &se) {
		return unavailable("deleting the object", err)
	}
	return err
}

// SignOptions are a signed URL's.
type SignOptions struct {
	Method      string        // GET or PUT
	Expiry      time.Duration // 0: DefaultExpiry; at most MaxExpiry
	ContentType string        // PUT: the media type to store
	IfNotExists bool          // PUT: write-once
}

// SignURL returns a URL that lets its holder GET or PUT the object at key
// until it expires. A GET URL is signed by the bucket's driver when it
// can (S3: the client fetches from the store itself); otherwise, and for
// every PUT, it is a path under SignedPath that the kernel serves, so that
// the plugin's limits, write-once and the SHA-256 apply to what a client
// uploads.
func (st *Store) SignURL(ctx context.Context, s Scope, key string, o SignOptions) (string, time.Time, error) {
	expiry := o.Expiry
	switch {
	case expiry == 0:
		expiry = DefaultExpiry
	case expiry < time.Second || expiry > MaxExpiry:
		return "", time.Time{}, sdk.Errorf(sdk.ErrInvalid, "a signed URL lasts from 1 second to %s, not %s", MaxExpiry, expiry)
	}
	full, err := s.Key(key)
	if err != nil {
		return "", time.Time{}, err
	}
	expires := st.now().Add(expiry).Truncate(time.Second)
	g := Grant{Method: o.Method, Key: full, Expires: expires}
	switch o.Method {
	case http.MethodGet:
		if o.ContentType != "" || o.IfNotExists {
			return "", time.Time{}, sdk.Errorf(sdk.ErrInvalid, "a content type and write-once apply to PUT URLs only")
		}
		if _, _, err := st.lookup(ctx, s, key); err != nil {
			return "", time.Time{}, err
		}
		u, err := st.bucket.SignedURL(ctx, full, &blob.SignedURLOptions{Method: http.MethodGet, Expiry: expiry})
		switch {
		case err == nil:
			return u, st.now().Add(expiry), nil
		case gcerrors.Code(err) != gcerrors.Unimplemented:
			return "", time.Time{}, unavailable("signing the URL", err)
		}
	case http.MethodPut:
		if err := CheckContentType(o.ContentType); err != nil {
			return "", time.Time{}, err
		}
		g.ContentType, g.IfNotExists = o.ContentType, o.IfNotExists
	default:
		return "", time.Time{}, sdk.Errorf(sdk.ErrInvalid, "a signed URL is for GET or PUT, not %q", o.Method)
	}
	return st.signer.URL(g), expires, nil
}
