package blobstoretest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/stretchr/testify/require"
)

// fetch sends a request to a signed URL: the kernel's (served by
// ServeSigned), or one the driver signed (fetched from the store).
func fetch(t *testing.T, st *blobstore.Store, method, u, contentType string, body []byte) (int, []byte, http.Header, error) {
	t.Helper()
	var rd io.Reader = http.NoBody
	if body != nil {
		rd = bytes.NewReader(body)
	}
	if !strings.HasPrefix(u, blobstore.SignedPath) {
		req, err := http.NewRequestWithContext(ctx(t), method, u, rd)
		require.NoError(t, err)
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		return res.StatusCode, b, res.Header, nil
	}
	req := httptest.NewRequestWithContext(ctx(t), method, u, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	pu, err := url.Parse(u)
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	if err := st.ServeSigned(rec, req, strings.TrimPrefix(pu.Path, blobstore.SignedPath)); err != nil {
		return 0, nil, nil, err
	}
	return rec.Code, rec.Body.Bytes(), rec.Header(), nil
}

func signed(t *testing.T, newStore NewStore) {
	clk := newClock()
	o := opts(clk)
	o.Limits = func(string) blobstore.Limits { return blobstore.Limits{Bytes: 1 << 20, ObjectBytes: 1000} }
	st := newStore(t, o)
	s := tscope(t, plugin(), tenant())
	key := "uploads/ünï code & more?.txt"

	// PUT through the kernel, with the bound media type and write-once.
	put, exp, err := st.SignURL(ctx(t), s, key, blobstore.SignOptions{Method: http.MethodPut, Expiry: 5 * time.Minute, ContentType: "text/plain", IfNotExists: true})
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(put, blobstore.SignedPath), put)
	require.WithinDuration(t, clk.Now().Add(5*time.Minute), exp, time.Second)
	code, body, _, err := fetch(t, st, http.MethodPut, put, "text/html", []byte("hello"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, code, "%s", body)
	require.Contains(t, string(body), sum([]byte("hello")))
	obj, err := st.Stat(ctx(t), s, key)
	require.NoError(t, err)
	require.Equal(t, "text/plain", obj.ContentType, "the signed media type, not the request's")
	_, _, _, err = fetch(t, st, http.MethodPut, put, "", []byte("again"))
	requireKind(t, err, sdk.ErrConflict, "object-exists")
	big, _, err := st.SignURL(ctx(t), s, "big", blobstore.SignOptions{Method: http.MethodPut})
	require.NoError(t, err)
	_, _, _, err = fetch(t, st, http.MethodPut, big, "", payload(1001))
	requireKind(t, err, sdk.ErrTooLarge, "object-too-large")
	_, err = st.Stat(ctx(t), s, "big")
	requireKind(t, err, sdk.ErrNotFound, "")

	// GET: the driver's URL when it signs, else the kernel's.
	get, _, err := st.SignURL(ctx(t), s, key, blobstore.SignOptions{Method: http.MethodGet, Expiry: time.Minute})
	require.NoError(t, err)
	code, body, h, err := fetch(t, st, http.MethodGet, get, "", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hello", string(body))
	if strings.HasPrefix(get, blobstore.SignedPath) {
		require.Equal(t, "text/plain", h.Get("Content-Type"))
		require.Equal(t, "nosniff", h.Get("X-Content-Type-Options"))
		require.Contains(t, h.Get("Content-Disposition"), "attachment")
		require.Equal(t, `"`+sum([]byte("hello"))+`"`, h.Get("ETag"))
	}

	// Tampered kernel URLs: 403 signed-url-invalid, whatever was changed.
	kernelGet := get
	if !strings.HasPrefix(get, blobstore.SignedPath) {
		// The store signs GETs itself; tamper with a kernel-signed PUT.
		kernelGet = ""
	}
	u, err := url.Parse(put)
	require.NoError(t, err)
	q := u.Query()
	tamper := map[string]func() string{
		"another key": func() string {
			v := *u
			v.Path = strings.Replace(v.Path, "uploads/", "upload5/", 1)
			return v.String()
		},
		"another institution": func() string {
			v := *u
			v.Path = strings.Replace(v.Path, s.Tenant, tenant(), 1)
			return v.String()
		},
		"another plugin": func() string {
			v := *u
			v.Path = strings.Replace(v.Path, s.Plugin, plugin(), 1)
			return v.String()
		},
		"later expiry": func() string {
			v, qq := *u, cloneQ(q)
			qq.Set("expires", fmt.Sprint(exp.Unix()+3600))
			v.RawQuery = qq.Encode()
			return v.String()
		},
		"other media type": func() string {
			v, qq := *u, cloneQ(q)
			qq.Set("ct", "text/html")
			v.RawQuery = qq.Encode()
			return v.String()
		},
		"write-once dropped": func() string {
			v, qq := *u, cloneQ(q)
			qq.Del("once")
			v.RawQuery = qq.Encode()
			return v.String()
		},
		"signature changed": func() string {
			v, qq := *u, cloneQ(q)
			sig := []byte(qq.Get("sig"))
			sig[3] ^= 1
			qq.Set("sig", string(sig))
			v.RawQuery = qq.Encode()
			return v.String()
		},
		"signature dropped": func() string {
			v, qq := *u, cloneQ(q)
			qq.Del("sig")
			v.RawQuery = qq.Encode()
			return v.String()
		},
		"extra parameter": func() string {
			v, qq := *u, cloneQ(q)
			qq.Set("x", "1")
			v.RawQuery = qq.Encode()
			return v.String()
		},
		"parameter twice": func() string { return put + "&expires=" + q.Get("expires") },
	}
	for name, mk := range tamper {
		_, _, _, err := fetch(t, st, http.MethodPut, mk(), "", []byte("evil"))
		requireKind(t, err, sdk.ErrForbidden, "signed-url-invalid")
		_ = name
	}
	// A PUT URL does not GET, nor a GET URL PUT.
	_, _, _, err = fetch(t, st, http.MethodGet, put, "", nil)
	requireKind(t, err, sdk.ErrForbidden, "signed-url-invalid")
	if kernelGet != "" {
		_, _, _, err = fetch(t, st, http.MethodPut, kernelGet, "", []byte("evil"))
		requireKind(t, err, sdk.ErrForbidden, "signed-url-invalid")
	}
	got, _ := read(t, st, s, key)
	require.Equal(t, "hello", string(got), "no tampered request changed anything")

	// Expiry: the URL works until its time, not after.
	later, _, err := st.SignURL(ctx(t), s, "later.txt", blobstore.SignOptions{Method: http.MethodPut, Expiry: 10 * time.Second})
	require.NoError(t, err)
	clk.Add(61 * time.Second) // past the GET URL's minute and this one's 10 seconds
	_, _, _, err = fetch(t, st, http.MethodPut, later, "", []byte("late"))
	requireKind(t, err, sdk.ErrForbidden, "signed-url-expired")
	if kernelGet != "" {
		_, _, _, err = fetch(t, st, http.MethodGet, kernelGet, "", nil)
		requireKind(t, err, sdk.ErrForbidden, "signed-url-expired")
	}
	_, err = st.Stat(ctx(t), s, "later.txt")
	requireKind(t, err, sdk.ErrNotFound, "")

	// Bounds.
	for _, so := range []blobstore.SignOptions{
		{Method: http.MethodPut, Expiry: time.Hour + time.Second},
		{Method: http.MethodPut, Expiry: time.Millisecond},
		{Method: http.MethodDelete},
		{Method: http.MethodGet, ContentType: "text/plain"},
		{Method: http.MethodPut, ContentType: "no type"},
	} {
		_, _, err := st.SignURL(ctx(t), s, key, so)
		requireKind(t, err, sdk.ErrInvalid, "")
	}
	_, _, err = st.SignURL(ctx(t), s, "missing", blobstore.SignOptions{Method: http.MethodGet})
	requireKind(t, err, sdk.ErrNotFound, "")
	_, _, err = st.SignURL(ctx(t), s, key, blobstore.SignOptions{Method: http.MethodPut, Expiry: time.Hour})
	require.NoError(t, err, "an hour is the longest")
}

func cloneQ(q url.Values) url.Values {
	out := url.Values{}
	for k, v := range q {
		out[k] = append([]string(nil), v...)
	}
	return out
}
