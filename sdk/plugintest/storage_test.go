package plugintest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// files is a plugin that keeps uploads in the kernel's object storage.
type files struct{ caps []sdk.Capability }

var _ sdk.Plugin = (*files)(nil)

type upload struct {
	Key     string `json:"key"`
	Content string `json:"content"`
	Once    bool   `json:"once,omitempty"`
}

type fileQuery struct {
	Key string `query:"key"`
}

func (f *files) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "files", Version: "0.1.0",
		Permissions: []sdk.Permission{{Name: "files.file.write", DefaultRoles: []string{"admin", "instructor", "learner"}}},
		Routes: []sdk.Route{
			{Method: "POST", Path: "/api/v1/files", Permission: "files.file.write", Request: upload{}, Handler: f.put},
			{Method: "GET", Path: "/api/v1/files", Permission: "files.file.write", Query: fileQuery{}, Handler: f.get},
			{Method: "POST", Path: "/api/v1/files/link", Permission: "files.file.write", Query: fileQuery{}, Handler: f.link},
		},
		Capabilities: f.caps,
	}
}

func (f *files) put(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	var in upload
	if err := r.Decode(&in); err != nil {
		return nil, err
	}
	obj, err := sdk.Storage(r).Put(ctx, in.Key, strings.NewReader(in.Content), sdk.PutOptions{ContentType: "text/plain", IfNotExists: in.Once})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, obj)
}

func (f *files) get(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	rd, _, err := sdk.Storage(r).Get(ctx, r.Query.Get("key"))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	b, err := io.ReadAll(rd)
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]string{"content": string(b)})
}

func (f *files) link(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
	u, err := sdk.Storage(r).SignedURL(ctx, r.Query.Get("key"), http.MethodPut, time.Minute, sdk.SignedURLOptions{ContentType: "text/csv"})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]string{"url": u})
}

// The harness's storage is the kernel's: scoped by institution, keys
// checked, limits and write-once enforced, capabilities required, and
// signed URLs served as the kernel serves them.
func TestStorage(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, &files{caps: []sdk.Capability{sdk.CapStorage}}, plugintest.WithStorageLimits(1000, 100))
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	res := h.Do(plugintest.User(a, "learner"), "POST", "/api/v1/files", upload{Key: "essays/1.txt", Content: "mine"})
	require.Equal(t, 201, res.Status, res)
	res = h.Do(plugintest.User(a, "learner"), "GET", "/api/v1/files?key=essays/1.txt", nil)
	require.Equal(t, 200, res.Status, res)
	require.Contains(t, string(res.Body), "mine")

	res = h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/files?key=essays/1.txt", nil)
	require.Equal(t, 404, res.Status, res)
	require.Equal(t, "object-not-found", res.Problem().Code)
	res = h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/files?key=../"+a+"/essays/1.txt", nil)
	require.Equal(t, 422, res.Status, res)
	require.Equal(t, "invalid-object-key", res.Problem().Code)

	res = h.Do(plugintest.User(a, "learner"), "POST", "/api/v1/files", upload{Key: "essays/1.txt", Content: "again", Once: true})
	require.Equal(t, 409, res.Status, res)
	res = h.Do(plugintest.User(a, "learner"), "POST", "/api/v1/files", upload{Key: "big", Content: strings.Repeat("x", 101)})
	require.Equal(t, 413, res.Status, res)
	require.Equal(t, "object-too-large", res.Problem().Code)

	// What the plugin stored, seen from the test.
	obj, err := h.Storage(a).Stat(t.Context(), "essays/1.txt")
	require.NoError(t, err)
	require.Equal(t, int64(4), obj.Size)
	require.Equal(t, "text/plain", obj.ContentType)
	_, err = h.Storage(b).Stat(t.Context(), "essays/1.txt")
	require.ErrorIs(t, err, sdk.ErrNotFound)
	_, err = h.PlatformStorage().Stat(t.Context(), "essays/1.txt")
	require.ErrorIs(t, err, sdk.ErrForbidden, "no platform_storage capability")

	// Signed URLs, as the kernel serves them.
	res = h.Do(plugintest.User(a, "learner"), "POST", "/api/v1/files/link?key=exports/list.csv", nil)
	require.Equal(t, 200, res.Status, res)
	var link struct{ URL string }
	res.JSON(t, &link)
	up := h.DoSigned("PUT", link.URL, "text/plain", strings.NewReader("a,b\n"))
	require.Equal(t, 201, up.Status, up)
	obj, err = h.Storage(a).Stat(t.Context(), "exports/list.csv")
	require.NoError(t, err)
	require.Equal(t, "text/csv", obj.ContentType)
	bad := h.DoSigned("PUT", strings.Replace(link.URL, "list.csv", "list.exe", 1), "", strings.NewReader("x"))
	require.Equal(t, 403, bad.Status, bad)
	require.Equal(t, "signed-url-invalid", bad.Problem().Code)
}

// A plugin that declares no storage capability gets none: the kernel
// answers its calls 403.
func TestStorageNeedsTheCapability(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, &files{})
	res := h.Do(plugintest.User(plugintest.NewTenant(), "learner"), "POST", "/api/v1/files", upload{Key: "a", Content: "a"})
	require.Equal(t, 403, res.Status, res)
	require.Contains(t, res.Problem().Detail, `did not declare the capability "storage"`)
	_, err := h.Storage(plugintest.NewTenant()).Put(t.Context(), "a", strings.NewReader("a"), sdk.PutOptions{})
	require.True(t, errors.Is(err, sdk.ErrForbidden), "%v", err)
}

// A capability the kernel does not know is refused at load.
func TestUnknownCapability(t *testing.T) {
	t.Parallel()
	err := plugintest.Check(&files{caps: []sdk.Capability{sdk.CapStorage, "telepathy"}})
	require.ErrorContains(t, err, `capability "telepathy": unknown`)
}
