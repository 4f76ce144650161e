package blobstore

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
)

// SignedPath is where the kernel serves the URLs it signs itself: for a
// PUT always, and for a GET when the bucket's driver cannot sign (a
// directory). A signed URL is SignedPath, the object's bucket key with
// each part path-escaped, and the query
//
//	?expires=<unix seconds>[&ct=<media type>][&once=1]&sig=<signature>
//
// where ct and once bind a PUT's media type and write-once option, and sig
// is the unpadded base64url HMAC-SHA256, under the kernel's URL key, of
//
//	"edulure-blob-url-v1\n" method "\n" key "\n" expires "\n" ct "\n" once
//
// (once is "1" or ""). Anything changed in the URL breaks the signature.
const SignedPath = "/api/v1/blobs/"

// Expiry bounds of a signed URL.
const (
	DefaultExpiry = 15 * time.Minute
	MaxExpiry     = time.Hour
)

// signature is the version tag of the signed message.
const signature = "edulure-blob-url-v1"

// Signer signs and checks the URLs of SignedPath.
type Signer struct{ key []byte }

// NewSigner makes a signer with key, which must be secret and at least 32
// bytes (the kernel derives one from EDULURE_SECRET_KEY).
func NewSigner(key []byte) *Signer {
	if len(key) < 32 {
		panic("blobstore: a URL signing key needs at least 32 bytes")
	}
	return &Signer{key: append([]byte(nil), key...)}
}

// Grant is what a signed URL allows.
type Grant struct {
	Method      string // GET or PUT
	Key         string // the bucket key
	Expires     time.Time
	ContentType string // PUT: the media type to store; "": the request's
	IfNotExists bool   // PUT: write-once
}

func (s *Signer) mac(g Grant) string {
	once := ""
	if g.IfNotExists {
		once = "1"
	}
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(signature + "\n" + g.Method + "\n" + g.Key + "\n" + strconv.FormatInt(g.Expires.Unix(), 10) + "\n" + g.ContentType + "\n" + once))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// URL is the signed path and query of g.
func (s *Signer) URL(g Grant) string {
	parts := strings.Split(g.Key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	q := "expires=" + strconv.FormatInt(g.Expires.Unix(), 10)
	if g.ContentType != "" {
		q += "&ct=" + url.QueryEscape(g.ContentType)
	}
	if g.IfNotExists {
		q += "&once=1"
	}
	return SignedPath + strings.Join(parts, "/") + "?" + q + "&sig=" + s.mac(g)
}

// Check returns the grant of a request for key (the path after SignedPath,
// unescaped) with method and query, at now: a 403 ErrForbidden naming
// what is wrong when the signature does not match (any change to the URL)
// or the URL has expired. HEAD is checked as GET.
func (s *Signer) Check(method, key string, query url.Values, now time.Time) (Grant, error) {
	if method == "HEAD" {
		method = "GET"
	}
	invalid := &sdk.Error{Kind: sdk.ErrForbidden, Code: "signed-url-invalid", Detail: "the URL's signature does not match: it was changed, or was not signed for this method"}
	for name, vs := range query {
		switch name {
		case "expires", "ct", "once", "sig":
			if len(vs) != 1 {
				return Grant{}, invalid
			}
		default:
			return Grant{}, invalid
		}
	}
	exp, err := strconv.ParseInt(query.Get("expires"), 10, 64)
	if err != nil {
		return Grant{}, invalid
	}
	g := Grant{Method: method, Key: key, Expires: time.Unix(exp, 0), ContentType: query.Get("ct")}
	switch query.Get("once") {
	case "":
	case "1":
		g.IfNotExists = true
	default:
		return Grant{}, invalid
	}
	if !hmac.Equal([]byte(s.mac(g)), []byte(query.Get("sig"))) {
		return Grant{}, invalid
	}
	if !now.Before(g.Expires) {
		return Grant{}, &sdk.Error{Kind: sdk.ErrForbidden, Code: "signed-url-expired", Detail: "the signed URL expired at " + g.Expires.UTC().Format(time.RFC3339) + "; ask for a new one"}
	}
	return g, nil
}
