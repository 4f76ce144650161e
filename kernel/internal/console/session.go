package console

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"time"
)

// cookieName is the session cookie. Its value is sealed: nobody, the
// browser's scripts included, can read or forge it.
const cookieName = "edulure_console"

// sessionAAD binds a sealed cookie to its purpose.
var sessionAAD = []byte("console-session:v1")

// session is what the console keeps for a browser, in its cookie.
type session struct {
	CSRF    string `json:"c"`           // the token every form carries
	Access  string `json:"a,omitempty"` // access token (signed in)
	Refresh string `json:"r,omitempty"` // refresh token
	Expires int64  `json:"x,omitempty"` // access token's expiry, Unix seconds
	Email   string `json:"e,omitempty"` // who signed in (shown in the header)
	Tenant  string `json:"t,omitempty"` // the institution's name, "" for none
	MFA     string `json:"m,omitempty"` // pending second-factor challenge
	Enrol   bool   `json:"n,omitempty"` // the challenge requires enrolment first
	Flash   string `json:"f,omitempty"` // a message for the next page
}

func (s *session) signedIn() bool { return s.Access != "" }

// load reads the browser's session, or starts one with a fresh CSRF token.
func (c *Console) load(r *http.Request) *session {
	if ck, err := r.Cookie(cookieName); err == nil {
		if raw, err := base64.RawURLEncoding.DecodeString(ck.Value); err == nil {
			if plain, err := c.sealer.Open(raw, sessionAAD); err == nil {
				var s session
				if json.Unmarshal(plain, &s) == nil && s.CSRF != "" {
					return &s
				}
			}
		}
	}
	return &session{CSRF: randomToken()}
}

// save writes the session into the answer's cookie.
func (c *Console) save(w http.ResponseWriter, r *http.Request, s *session) {
	plain, _ := json.Marshal(s)
	value := base64.RawURLEncoding.EncodeToString(c.sealer.Seal(plain, sessionAAD))
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: value, Path: "/console",
		HttpOnly: true, Secure: secureCookie(r), SameSite: http.SameSiteStrictMode,
		// A browser session: gone when the browser closes. The tokens
		// inside expire on their own (the refresh token with the session).
	})
}

// clear ends the browser's session, keeping a fresh CSRF token.
func (c *Console) clear(w http.ResponseWriter, r *http.Request, flash string) *session {
	s := &session{CSRF: randomToken(), Flash: flash}
	c.save(w, r, s)
	return s
}

// secureCookie: the cookie goes over HTTPS only, except to a loopback
// address (a developer's http://localhost:8080).
func secureCookie(r *http.Request) bool {
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	return !loopbackHost(r.Host)
}

func loopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.Trim(host, "[]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkCSRF: a form's csrf field must be the session's token.
func checkCSRF(r *http.Request, s *session) bool {
	got := r.PostFormValue("csrf")
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) == 1
}

// sameOrigin refuses a cross-site form post: browsers say where a request
// comes from (Sec-Fetch-Site, Origin); SameSite=Strict and the CSRF token
// already stop it, this is one more wall.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	if o := r.Header.Get("Origin"); o != "" && o != "null" {
		return strings.TrimPrefix(strings.TrimPrefix(o, "https://"), "http://") == r.Host
	}
	return true
}

func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// expiresAt is when an access token that lives n seconds, issued now, ends.
func expiresAt(now time.Time, n float64) int64 {
	if n <= 0 {
		n = 60
	}
	return now.Add(time.Duration(n) * time.Second).Unix()
}
