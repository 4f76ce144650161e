package conformance

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/edulure/edulure/sdk"
)

// StorageObjectBytes is the largest object the conformance plugin may
// store, in the kernel's plugins.hcl and plugintest's WithStorageLimits
// alike.
const StorageObjectBytes = 10

// FileQuery are the storage routes' query parameters.
type FileQuery struct {
	Key  string `query:"key"`
	Once bool   `query:"once"`
}

// File is what the storage routes answer: what both sides record alike
// (not the time it was stored).
type File struct {
	Key         string `json:"key"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type"`
	SHA256      string `json:"sha256"`
	Content     string `json:"content,omitempty"`
}

// NewFile is the body of POST /files.
type NewFile struct {
	Content string `json:"content"`
}

func (p *Plugin) storageRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/conf/files", Permission: PermWrite, Query: FileQuery{}, Request: NewFile{}, Response: File{}, Status: http.StatusCreated, Handler: putFile},
		{Method: "GET", Path: "/api/v1/conf/files", Permission: PermRead, Query: FileQuery{}, Response: File{}, Handler: getFile},
		{Method: "POST", Path: "/api/v1/conf/files/platform", Permission: PermWrite, Query: FileQuery{}, Request: NewFile{}, Response: File{}, Status: http.StatusCreated, Handler: p.putPlatformFile},
	}
}

func file(o sdk.Object, content string) File {
	return File{Key: o.Key, Size: o.Size, ContentType: o.ContentType, SHA256: o.SHA256, Content: content}
}

func putFile(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return put(ctx, req, sdk.Storage(req))
}

// putPlatformFile uses the platform scope, which the manifest does not
// declare: both sides refuse it alike.
func (p *Plugin) putPlatformFile(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return put(ctx, req, p.env.PlatformStorage())
}

func put(ctx context.Context, req *sdk.Request, b *sdk.Bucket) (*sdk.Response, error) {
	var in NewFile
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	q, err := sdk.Query[FileQuery](req)
	if err != nil {
		return nil, err
	}
	o, err := b.Put(ctx, q.Key, strings.NewReader(in.Content), sdk.PutOptions{ContentType: "text/plain", IfNotExists: q.Once})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, file(o, ""))
}

func getFile(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	rd, o, err := sdk.Storage(req).Get(ctx, req.Query.Get("key"))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, file(o, string(b)))
}
