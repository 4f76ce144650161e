package messaging

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// One-click unsubscribe (RFC 8058). Every bulk email carries, in its
// List-Unsubscribe header and its footer, an https URL holding a token
// signed for its recipient, institution and category. A POST to it
// unsubscribes, with no session or cookie (mail clients send it on their
// own: "List-Unsubscribe=One-Click"); a GET only shows a page with a
// button that POSTs, so a link scanner that follows the link changes
// nothing. The token never expires (an old email's link keeps working);
// its HMAC key is the plugin's own (keys table), made on first start.

// unsubToken is what a token says.
type unsubToken struct {
	Tenant, User string
	Category     Category // a configurable category, or digest: whatever waits for the digest
	Issued       time.Time
}

const tokenVersion = 1

var tokenMACLabel = []byte("edulure-messaging-unsubscribe-v1")

func (p *Plugin) signToken(t unsubToken) string {
	tenant, _ := uuid.Parse(t.Tenant)
	user, _ := uuid.Parse(t.User)
	b := make([]byte, 0, 64)
	b = append(b, tokenVersion)
	b = append(b, tenant[:]...)
	b = append(b, user[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(t.Issued.Unix()))
	b = append(b, byte(len(t.Category)))
	b = append(b, t.Category...)
	b = append(b, p.tokenMAC(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (p *Plugin) tokenMAC(payload []byte) []byte {
	m := hmac.New(sha256.New, p.unsubKey)
	m.Write(tokenMACLabel)
	m.Write(payload)
	return m.Sum(nil)[:16]
}

var errBadToken = errors.New("not an unsubscribe token of this platform")

// parseToken reads and verifies a token.
func (p *Plugin) parseToken(s string) (unsubToken, error) {
	var t unsubToken
	if len(s) > 200 {
		return t, errBadToken
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s) // one spelling per token
	if err != nil || len(b) < 1+16+16+8+1+16 || b[0] != tokenVersion {
		return t, errBadToken
	}
	n := int(b[41])
	if n == 0 || n > 40 || len(b) != 42+n+16 {
		return t, errBadToken
	}
	payload, mac := b[:42+n], b[42+n:]
	if !hmac.Equal(mac, p.tokenMAC(payload)) {
		return t, errBadToken
	}
	tenant, _ := uuid.FromBytes(b[1:17])
	user, _ := uuid.FromBytes(b[17:33])
	t = unsubToken{Tenant: tenant.String(), User: user.String(), Category: Category(b[42 : 42+n]),
		Issued: time.Unix(int64(binary.BigEndian.Uint64(b[33:41])), 0).UTC()}
	if ci, ok := categoryOf(t.Category); !ok || !(ci.Configurable || ci.Category == CatDigest) {
		return unsubToken{}, errBadToken
	}
	return t, nil
}

// unsubscribeURL is the one-click URL of a person's category.
func (p *Plugin) unsubscribeURL(cfg Config, tenant, user string, c Category, now time.Time) string {
	return strings.TrimRight(cfg.APIURL, "/") + "/api/v1/unsubscribe/" + p.signToken(unsubToken{Tenant: tenant, User: user, Category: c, Issued: now})
}

// Unsubscribed is the answer of a one-click unsubscribe.
type Unsubscribed struct {
	Unsubscribed bool     `json:"unsubscribed"`
	Categories   []string `json:"categories" doc:"The categories whose email stopped."`
}

func (p *Plugin) unsubscribeRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/unsubscribe/{token}", Public: true,
			Summary:  "One-click unsubscribe (RFC 8058) from a category's email, with the token of the email's link; needs no session",
			Response: Unsubscribed{}, Handler: p.unsubscribe},
		{Method: "GET", Path: "/api/v1/unsubscribe/{token}", Public: true,
			Summary: "The page of an unsubscribe link: says what it would do and asks to confirm (a GET changes nothing)",
			Stream:  p.unsubscribePage, ContentType: "text/html; charset=utf-8"},
	}
}

func (p *Plugin) unsubscribe(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	t, err := p.parseToken(req.Param("token"))
	if err != nil {
		return nil, sdk.Errorf(sdk.ErrNotFound, "this unsubscribe link is not valid").WithCode("unknown_token")
	}
	out := Unsubscribed{Unsubscribed: true, Categories: []string{}}
	// The token names the institution; a request without credentials has
	// none, so the plugin scopes the work itself.
	cfg, err := p.tenantConfig(ctx, t.Tenant)
	if err != nil {
		return nil, err
	}
	now := p.now()
	err = p.env.DB.InTenant(ctx, t.Tenant, func(tx pgx.Tx) error {
		cats := []Category{t.Category}
		if t.Category == CatDigest {
			cats = nil
			rs, err := loadRecipients(ctx, tx, []string{t.User})
			if err != nil {
				return err
			}
			for _, ci := range categories {
				if m, _ := resolveMode(ci, Email, cfg.Defaults, rs[t.User].settings.prefs); ci.Configurable && m == Digest {
					cats = append(cats, ci.Category)
				}
			}
		}
		for _, c := range cats {
			if err := setPreference(ctx, tx, t.Tenant, t.User, c, Email, string(Off), srcUnsubscribe, now); err != nil {
				return err
			}
			out.Categories = append(out.Categories, string(c))
		}
		// What waits to be sent of those categories stops too.
		return suppressFor(ctx, tx, now, `n.recipient_id = $1 AND n.category = ANY($2) AND d.channel = 'email'`,
			"unsubscribed", "you unsubscribed from this email", t.User, out.Categories)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

var unsubscribePage = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><meta name="robots" content="noindex">
<title>Unsubscribe</title></head>
<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1f2328">
<h1 style="font-size:1.3rem">Unsubscribe from {{.What}}?</h1>
<p>You will stop getting {{.What}} from {{.Brand}} by email. In-app notifications and security email are not affected, and you can turn it back on in your notification settings.</p>
<form method="post" action="{{.Action}}"><button type="submit" style="font-size:1rem;padding:.5rem 1rem">Unsubscribe</button></form>
<p style="color:#57606a;font-size:.85rem">Nothing has changed yet: this page only asks.</p>
</body></html>
`))

// unsubscribePage answers the GET of an unsubscribe link: a page that
// asks, and changes nothing.
func (p *Plugin) unsubscribePage(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
	t, err := p.parseToken(req.Param("token"))
	if err != nil {
		return sdk.Errorf(sdk.ErrNotFound, "this unsubscribe link is not valid").WithCode("unknown_token")
	}
	cfg, err := p.tenantConfig(ctx, t.Tenant)
	if err != nil {
		return err
	}
	what := string(t.Category) + " email"
	if t.Category == CatDigest {
		what = "the daily digest"
	}
	_ = w.SetHeader("Cache-Control", "no-store")
	return unsubscribePage.Execute(w, map[string]string{
		"What": what, "Brand": cfg.brand(""), "Action": "/api/v1/unsubscribe/" + req.Param("token"),
	})
}

// tenantConfig is the configuration in force for an institution, for work
// that no request or run of it carries (a public route).
func (p *Plugin) tenantConfig(ctx context.Context, tenant string) (Config, error) {
	cfg, _, err := p.tenantConfigEnabled(ctx, tenant)
	return cfg, err
}

// tenantConfigEnabled is tenantConfig, and whether the institution has
// the plugin turned on.
func (p *Plugin) tenantConfigEnabled(ctx context.Context, tenant string) (Config, bool, error) {
	raw, enabled, err := p.env.Host.TenantConfig(ctx, tenant)
	if err != nil {
		return Config{}, false, fmt.Errorf("reading the configuration of %s: %w", tenant, err)
	}
	cfg, err := p.operatorConfig()
	if err != nil {
		return cfg, false, err
	}
	op := cfg
	if err := decodeLayer(raw, &cfg); err != nil {
		return cfg, false, err
	}
	return cfg.withOperator(op), enabled, nil
}
