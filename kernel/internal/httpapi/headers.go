package httpapi

import (
	"net/http"

	"github.com/labstack/echo/v4"
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

// secureHeaders sets the security headers (HSTS over HTTPS only).
func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		setHeaders(h, securityHeaders)
		if c.Scheme() == "https" {
			setHeaders(h, hstsHeader)
		}
		return next(c)
	}
}
