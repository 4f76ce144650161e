package httpapi

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/problem"
)

// Security headers on every answer, as Echo's Secure middleware sets them,
// with values made once: Header.Set allocates a fresh slice per header per
// request, which was a tenth of the kernel's allocations under load. The
// slices are full (len = cap), so an Add elsewhere copies rather than
// writes into them.
var (
	securityHeaders = staticHeaders(
		echo.HeaderXXSSProtection, "0",
		echo.HeaderXContentTypeOptions, "nosniff",
		echo.HeaderXFrameOptions, "DENY",
		echo.HeaderContentSecurityPolicy, "default-src 'none'; frame-ancestors 'none'",
		echo.HeaderReferrerPolicy, "no-referrer",
	)
	hstsHeader    = staticHeaders(echo.HeaderStrictTransportSecurity, "max-age=31536000; includeSubdomains")
	noStoreHeader = staticHeaders("Cache-Control", "no-store")
	// tokenHeaders go on every /api/v1/auth answer, which may carry tokens:
	// RFC 6749 §5.1 (Pragma for HTTP/1.0 caches).
	tokenHeaders = staticHeaders("Cache-Control", "no-store", "Pragma", "no-cache")
)

type staticHeader struct {
	key   string
	value []string
}

func staticHeaders(kv ...string) []staticHeader {
	out := make([]staticHeader, 0, len(kv)/2)
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, staticHeader{http.CanonicalHeaderKey(kv[i]), []string{kv[i+1]}[:1:1]})
	}
	return out
}

func setHeaders(h http.Header, hs []staticHeader) {
	for _, x := range hs {
		h[x.key] = x.value
	}
}

// secureHeaders sets the security headers, and HSTS over HTTPS only: a
// TLS connection, or X-Forwarded-Proto: https from a proxy the operator
// trusts (EDULURE_TRUST_PROXY). Anyone can send that header; untrusted, it
// says nothing about the connection.
func (s *Server) secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	trustProxy := s.Config.TrustProxy
	return func(c echo.Context) error {
		h := c.Response().Header()
		setHeaders(h, securityHeaders)
		if c.Request().TLS != nil || (trustProxy && c.Scheme() == "https") {
			setHeaders(h, hstsHeader)
		}
		return next(c)
	}
}

// noStore marks a route's answers, success or problem, as not to be cached.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		setHeaders(c.Response().Header(), tokenHeaders)
		return next(c)
	}
}

// headerLimit bounds a request's line and headers. The HTTP server's own
// limit is higher (serverHeaderLimit), so that a request between the two
// gets a problem document rather than Go's text/plain 431.
const (
	headerLimit       = 64 << 10
	serverHeaderLimit = 1 << 20
)

// limitHeaders answers 431 to a request whose target and headers together
// exceed headerLimit.
func limitHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		n := len(r.Method) + len(r.RequestURI) + len(r.Host)
		for k, vs := range r.Header {
			for _, v := range vs {
				n += len(k) + len(v) + 4 // ": " and CRLF
			}
		}
		if n > headerLimit {
			return problem.New(http.StatusRequestHeaderFieldsTooLarge, "headers-too-large",
				fmt.Sprintf("the request line and headers are %d bytes, more than the limit of %d", n, headerLimit))
		}
		return next(c)
	}
}
