// Package console is the admin console the kernel serves at /console/: a
// server-rendered web application (html/template, plain HTML forms, one
// small script of its own for progressive enhancement) from embedded
// assets.
//
// The console has no back door into the kernel. Every page is built from
// calls to the kernel's public /api/v1, made in-process through the API's
// own http.Handler with the signed-in person's access token, exactly as a
// client over the network would make them: the same authentication, OPA
// decisions, validation and problem documents. The tokens live only in the
// session cookie, sealed (AES-256-GCM under EDULURE_SECRET_KEY), HttpOnly
// and SameSite=Strict; no script ever sees them. See docs/console.md.
package console
