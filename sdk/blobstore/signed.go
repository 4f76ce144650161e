package blobstore

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/edulure/edulure/sdk"
)

// ServeSigned answers a request for a URL of SignedPath: key is the bucket
// key (the request path after SignedPath, unescaped). GET and HEAD stream
// the object out; PUT streams the request body in, under the plugin's
// limits, with the media type and write-once the URL binds (else the
// request's Content-Type), and answers 201 with the Object. It writes
// nothing when it fails: the caller answers the error (an *sdk.Error; 403
// for a URL that was changed or has expired), as the kernel does with
// problem+json.
//
// The content is served as an attachment in a sandbox, never as a page of
// the API's origin: what a client uploaded cannot run script there.
func (st *Store) ServeSigned(w http.ResponseWriter, r *http.Request, key string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPut:
	default:
		w.Header().Set("Allow", "GET, HEAD, PUT")
		return &sdk.Error{Kind: sdk.ErrBadRequest, Code: "method-not-allowed", Detail: "a signed URL answers GET, HEAD or PUT"}
	}
	g, err := st.signer.Check(r.Method, key, r.URL.Query(), st.now())
	if err != nil {
		return err
	}
	s, rel, ok := ParseKey(g.Key)
	if !ok {
		return &sdk.Error{Kind: sdk.ErrForbidden, Code: "signed-url-invalid", Detail: "the URL names no plugin object"}
	}
	// The URL's lifetime bounds the transfer, not the API's request timeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(g.Expires)
	_ = rc.SetWriteDeadline(g.Expires)
	ctx := r.Context()
	if r.Method == http.MethodPut {
		ct := g.ContentType
		if ct == "" {
			ct = r.Header.Get("Content-Type")
		}
		obj, err := st.Put(ctx, s, rel, r.Body, PutOptions{ContentType: ct, IfNotExists: g.IfNotExists})
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return &sdk.Error{Kind: sdk.ErrTooLarge, Code: "body-too-large", Detail: err.Error()}
			}
			return err
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		return json.NewEncoder(w).Encode(obj)
	}
	rd, obj, err := st.Get(ctx, s, rel)
	if err != nil {
		return err
	}
	defer rd.Close()
	h := w.Header()
	h.Set("Content-Type", obj.ContentType)
	h.Set("Content-Length", strconv.FormatInt(obj.Size, 10))
	h.Set("ETag", `"`+obj.SHA256+`"`)
	h.Set("Last-Modified", obj.Modified.UTC().Format(http.TimeFormat))
	h.Set("Cache-Control", "private, no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	name := rel[strings.LastIndexByte(rel, '/')+1:]
	h.Set("Content-Disposition", "attachment; filename*=UTF-8''"+pathEscapeAll(name))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return nil
	}
	buf := make([]byte, ChunkSize)
	_, err = io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{rd}, buf)
	if err != nil {
		// The status is sent: the client sees a short body.
		return errors.Join(ErrAfterHeaders, err)
	}
	return nil
}

// ErrAfterHeaders marks an error of ServeSigned after the answer's status
// was sent: there is nothing left to answer, only to log.
var ErrAfterHeaders = errors.New("the signed download failed after its headers were sent")

// pathEscapeAll is RFC 5987 percent-encoding: everything but unreserved
// characters.
func pathEscapeAll(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}
