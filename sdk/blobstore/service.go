package blobstore

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/internal/bridge"
	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
	"github.com/edulure/edulure/sdk/wire"
)

// Service serves the Host service's object-storage calls to one plugin:
// the kernel embeds it in its Host server, sdk/plugintest serves it alone.
// It answers PERMISSION_DENIED to a call the plugin's manifest did not
// declare the capability of (wire.CapStorage for an institution's
// objects, wire.CapPlatformStorage for the platform's), before anything
// else; every other error is a status by wire.ErrorStatus.
type Service struct {
	pluginv1.UnimplementedHostServer

	Store        *Store
	Plugin       string
	Capabilities []string
	Logger       hclog.Logger // nil: none
}

// scope checks the capability and makes the call's scope.
func (s *Service) scope(in *pluginv1.BlobScope) (Scope, error) {
	if in == nil {
		in = &pluginv1.BlobScope{}
	}
	need, sc := wire.CapStorage, func() (Scope, error) { return TenantScope(s.Plugin, in.TenantId) }
	if in.Platform {
		if in.TenantId != "" {
			return Scope{}, status.Error(codes.InvalidArgument, "a scope is an institution or the platform, not both")
		}
		need, sc = wire.CapPlatformStorage, func() (Scope, error) { return PlatformScope(s.Plugin) }
	}
	if !slices.Contains(s.Capabilities, need) {
		return Scope{}, status.Errorf(codes.PermissionDenied, "plugin %q did not declare the capability %q in its manifest", s.Plugin, need)
	}
	if s.Store == nil {
		return Scope{}, status.Error(codes.Unavailable, "the kernel has no object storage configured (EDULURE_BLOB_URL)")
	}
	out, err := sc()
	if err != nil {
		return Scope{}, s.status(err)
	}
	return out, nil
}

// status is the gRPC status of an error of the store.
func (s *Service) status(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "the call was cancelled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "the call's deadline passed")
	}
	e := &pluginv1.Error{Kind: bridge.KindName(err)}
	var se *sdk.Error
	switch {
	case e.Kind == wire.Internal.Name:
		if s.Logger != nil {
			s.Logger.Error("object storage failed", "plugin", s.Plugin, "error", err)
		}
		e.Detail = "the kernel's object storage failed; its log has the details"
	case errors.As(err, &se):
		e.Code, e.Detail = se.Code, se.Detail
	default:
		e.Detail = err.Error()
	}
	if e.Kind == "unavailable" && s.Logger != nil {
		s.Logger.Warn("object storage unavailable", "plugin", s.Plugin, "error", err) // with the cause
	}
	return wire.ErrorStatus(e)
}

func wireObject(o Object) *pluginv1.BlobObject {
	return &pluginv1.BlobObject{Key: o.Key, Size: o.Size, ContentType: o.ContentType, Sha256: o.SHA256, ModifiedUnixMs: o.Modified.UnixMilli()}
}

// BlobPut implements Host.BlobPut.
func (s *Service) BlobPut(stream pluginv1.Host_BlobPutServer) error {
	first, err := stream.Recv()
	if err == io.EOF {
		return status.Error(codes.InvalidArgument, "BlobPut: the stream ended before its first message")
	}
	if err != nil {
		return err
	}
	sc, err := s.scope(first.Scope)
	if err != nil {
		return err
	}
	r := &putReader{stream: stream, buf: first.Data}
	if len(first.Data) > MaxChunkSize {
		return status.Errorf(codes.InvalidArgument, "BlobPut: a message carries at most %d bytes", MaxChunkSize)
	}
	obj, err := s.Store.Put(stream.Context(), sc, first.Key, r, PutOptions{ContentType: first.ContentType, IfNotExists: first.IfNotExists})
	if err != nil {
		if r.err != nil && r.err != io.EOF {
			err = r.err // the stream broke: say so, not what it did to the store
		}
		return s.status(err)
	}
	return stream.SendAndClose(wireObject(obj))
}

// putReader reads the data of a BlobPut stream.
type putReader struct {
	stream pluginv1.Host_BlobPutServer
	buf    []byte
	err    error
}

func (r *putReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		if r.err != nil {
			return 0, r.err
		}
		m, err := r.stream.Recv()
		switch {
		case err == io.EOF:
			r.err = io.EOF
		case err != nil:
			r.err = err
		case len(m.Data) > MaxChunkSize:
			r.err = status.Errorf(codes.InvalidArgument, "BlobPut: a message carries at most %d bytes", MaxChunkSize)
		default:
			r.buf = m.Data
		}
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// BlobGet implements Host.BlobGet.
func (s *Service) BlobGet(in *pluginv1.BlobGetRequest, stream pluginv1.Host_BlobGetServer) error {
	sc, err := s.scope(in.Scope)
	if err != nil {
		return err
	}
	rd, obj, err := s.Store.Get(stream.Context(), sc, in.Key)
	if err != nil {
		return s.status(err)
	}
	defer rd.Close()
	if err := stream.Send(&pluginv1.BlobGetResponse{Object: wireObject(obj)}); err != nil {
		return err
	}
	buf := make([]byte, ChunkSize)
	for {
		n, err := io.ReadFull(rd, buf)
		if n > 0 {
			if err := stream.Send(&pluginv1.BlobGetResponse{Data: buf[:n]}); err != nil {
				return err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return nil
		}
		if err != nil {
			return s.status(unavailable("reading the object", err))
		}
	}
}

// BlobStat implements Host.BlobStat.
func (s *Service) BlobStat(ctx context.Context, in *pluginv1.BlobStatRequest) (*pluginv1.BlobObject, error) {
	sc, err := s.scope(in.Scope)
	if err != nil {
		return nil, err
	}
	obj, err := s.Store.Stat(ctx, sc, in.Key)
	if err != nil {
		return nil, s.status(err)
	}
	return wireObject(obj), nil
}

// BlobList implements Host.BlobList.
func (s *Service) BlobList(ctx context.Context, in *pluginv1.BlobListRequest) (*pluginv1.BlobListResponse, error) {
	sc, err := s.scope(in.Scope)
	if err != nil {
		return nil, err
	}
	objs, next, err := s.Store.List(ctx, sc, in.Prefix, in.Cursor, int(in.Limit))
	if err != nil {
		return nil, s.status(err)
	}
	out := &pluginv1.BlobListResponse{NextCursor: next, Objects: make([]*pluginv1.BlobObject, 0, len(objs))}
	for _, o := range objs {
		out.Objects = append(out.Objects, wireObject(o))
	}
	return out, nil
}

// BlobDelete implements Host.BlobDelete.
func (s *Service) BlobDelete(ctx context.Context, in *pluginv1.BlobDeleteRequest) (*pluginv1.BlobDeleteResponse, error) {
	sc, err := s.scope(in.Scope)
	if err != nil {
		return nil, err
	}
	if err := s.Store.Delete(ctx, sc, in.Key); err != nil {
		return nil, s.status(err)
	}
	return &pluginv1.BlobDeleteResponse{}, nil
}

// BlobSignURL implements Host.BlobSignURL.
func (s *Service) BlobSignURL(ctx context.Context, in *pluginv1.BlobSignURLRequest) (*pluginv1.BlobSignURLResponse, error) {
	sc, err := s.scope(in.Scope)
	if err != nil {
		return nil, err
	}
	if in.ExpiresInSeconds < 0 {
		return nil, status.Error(codes.InvalidArgument, "expires_in_seconds cannot be negative")
	}
	u, exp, err := s.Store.SignURL(ctx, sc, in.Key, SignOptions{
		Method: in.Method, Expiry: time.Duration(in.ExpiresInSeconds) * time.Second,
		ContentType: in.ContentType, IfNotExists: in.IfNotExists,
	})
	if err != nil {
		return nil, s.status(err)
	}
	return &pluginv1.BlobSignURLResponse{Url: u, ExpiresUnixMs: exp.UnixMilli()}, nil
}
