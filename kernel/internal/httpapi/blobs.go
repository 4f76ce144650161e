package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/privacy"
	"github.com/edulure/edulure/kernel/internal/problem"
	"github.com/edulure/edulure/sdk/blobstore"
)

// signedBlob serves the URLs the kernel signs for plugins' objects
// (Bucket.SignedURL): GET and HEAD stream an object out, PUT streams one
// in under its plugin's limits. The signature is the credential: no token,
// and no body limit or request deadline but the URL's own expiry.
// blobstore.ServeSigned is the same code sdk/plugintest answers with.
func (s *Server) signedBlob(c echo.Context) error {
	st := s.Plugins.Storage()
	if st == nil {
		return problem.New(http.StatusNotFound, "storage-not-configured", "this kernel has no object storage (EDULURE_BLOB_URL)")
	}
	key := strings.TrimPrefix(c.Request().URL.Path, blobstore.SignedPath)
	if privacy.IsBundleKey(key) {
		return s.serveExport(c, key) // the kernel's own: an export archive
	}
	err := st.ServeSigned(c.Response(), c.Request(), key)
	if errors.Is(err, blobstore.ErrAfterHeaders) {
		s.requestLogger(c).Warn("signed download cut short", "error", err)
		return nil
	}
	return err
}

// signedBlobPath reports whether a request is for a signed URL, which
// the body limit and the request deadline leave alone.
func signedBlobPath(c echo.Context) bool {
	return strings.HasPrefix(c.Request().URL.Path, blobstore.SignedPath)
}
