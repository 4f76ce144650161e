package messaging

import (
	"bytes"
	htmltemplate "html/template"
	netmail "net/mail"
	"strings"
	texttemplate "text/template"
	"time"

	"github.com/wneessen/go-mail"
)

// What an email says, and how it is made: a plain-text part and an HTML
// part (multipart/alternative) in the institution's branding; bulk mail
// (everything but security, invitations and billing) with RFC 8058
// one-click unsubscribe headers (List-Unsubscribe with the https URL of a
// signed per-recipient token, and List-Unsubscribe-Post) and the same
// link in its footer; transactional mail without them.

// mailContent is an email's words.
type mailContent struct {
	Subject    string
	Heading    string
	Greeting   string
	Paragraphs []string
	Rich       htmltemplate.HTML // the HTML part's body instead of Paragraphs: a post's sanitised rich text
	Action     *mailAction
	Items      []mailItem // a digest's
	More       int        // items a digest left out
	Note       string     // small print (an expiry)
	Why        string     // why the person gets it
	ManageURL  string
	UnsubURL   string
}

type mailAction struct{ Label, URL string }

type mailItem struct{ Title, Body, URL string }

// brandInfo is the institution's branding.
type brandInfo struct {
	Name, Color, LogoURL, Footer string
}

func brandOf(cfg Config, fallbackName string) brandInfo {
	return brandInfo{Name: cfg.brand(fallbackName), Color: cfg.BrandColor, LogoURL: cfg.LogoURL, Footer: cfg.Footer}
}

var textTemplate = texttemplate.Must(texttemplate.New("text").Parse(`{{.C.Greeting}}

{{range .C.Paragraphs}}{{.}}

{{end}}{{with .C.Action}}{{.Label}}: {{.URL}}

{{end}}{{range .C.Items}}* {{.Title}}{{with .Body}}
  {{.}}{{end}}{{with .URL}}
  {{.}}{{end}}

{{end}}{{if .C.More}}... and {{.C.More}} more.

{{end}}{{with .C.Note}}{{.}}

{{end}}-- 
{{.B.Name}}
{{with .C.Why}}{{.}}
{{end}}{{with .C.ManageURL}}Choose what you get: {{.}}
{{end}}{{with .C.UnsubURL}}Unsubscribe: {{.}}
{{end}}{{with .B.Footer}}{{.}}
{{end}}`))

var htmlTemplate = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.C.Subject}}</title></head>
<body style="margin:0;padding:0;background:#f4f5f7;font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#1f2328">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0"><tr><td align="center" style="padding:24px">
<table role="presentation" width="560" cellpadding="0" cellspacing="0" style="background:#fff;border-radius:8px;border-top:4px solid {{.Color}}">
<tr><td style="padding:24px 32px 8px">{{if .B.LogoURL}}<img src="{{.B.LogoURL}}" alt="{{.B.Name}}" height="32">{{else}}<strong style="color:{{.Color}};font-size:18px">{{.B.Name}}</strong>{{end}}</td></tr>
<tr><td style="padding:8px 32px 24px;font-size:15px;line-height:1.5">
<h1 style="font-size:20px;margin:0 0 16px">{{.C.Heading}}</h1>
<p>{{.C.Greeting}}</p>
{{if .C.Rich}}<div>{{.C.Rich}}</div>
{{else}}{{range .C.Paragraphs}}<p>{{.}}</p>
{{end}}{{end}}{{with .C.Action}}<p style="margin:24px 0"><a href="{{.URL}}" style="background:{{$.Color}};color:#fff;padding:10px 18px;border-radius:6px;text-decoration:none;display:inline-block">{{.Label}}</a></p>
{{end}}{{if .C.Items}}<ul style="padding-left:18px">{{range .C.Items}}<li style="margin-bottom:12px">{{if .URL}}<a href="{{.URL}}" style="color:{{$.Color}}">{{.Title}}</a>{{else}}{{.Title}}{{end}}{{with .Body}}<br><span style="color:#57606a">{{.}}</span>{{end}}</li>
{{end}}</ul>{{end}}{{if .C.More}}<p>… and {{.C.More}} more.</p>{{end}}
{{with .C.Note}}<p style="color:#57606a;font-size:13px">{{.}}</p>{{end}}
</td></tr>
<tr><td style="padding:16px 32px;border-top:1px solid #eaecef;color:#57606a;font-size:12px;line-height:1.5">
{{with .C.Why}}{{.}}<br>{{end}}{{with .C.ManageURL}}<a href="{{.}}" style="color:#57606a">Choose what you get</a>{{end}}{{with .C.UnsubURL}} · <a href="{{.}}" style="color:#57606a">Unsubscribe</a>{{end}}
{{with .B.Footer}}<br>{{.}}{{end}}
</td></tr></table></td></tr></table></body></html>
`))

// render makes the two parts of an email.
func render(b brandInfo, c mailContent) (text, html string, err error) {
	data := struct {
		B     brandInfo
		C     mailContent
		Color htmltemplate.CSS
	}{b, c, htmltemplate.CSS(safeColor(b.Color))}
	var tb, hb bytes.Buffer
	if err := textTemplate.Execute(&tb, data); err != nil {
		return "", "", err
	}
	if err := htmlTemplate.Execute(&hb, data); err != nil {
		return "", "", err
	}
	return tb.String(), hb.String(), nil
}

// safeColor is a #rrggbb colour, else the default (the schema checks the
// setting; this keeps CSS safe whatever the input).
func safeColor(c string) string {
	if len(c) == 7 && c[0] == '#' && strings.Trim(c[1:], "0123456789abcdefABCDEF") == "" {
		return c
	}
	return "#2f5bea"
}

// envelope is who a message goes from and to, and how it is marked.
type envelope struct {
	From      *netmail.Address
	ReplyTo   string
	To        netmail.Address
	MessageID string // without angle brackets
	Category  Category
	Bulk      bool      // bulk mail: unsubscribe headers
	UnsubURL  string    // the one-click URL (bulk)
	Date      time.Time // the Date header
}

// buildMessage makes the message to send.
func buildMessage(env envelope, b brandInfo, c mailContent) (*mail.Msg, error) {
	text, html, err := render(b, c)
	if err != nil {
		return nil, err
	}
	m := mail.NewMsg()
	m.FromMailAddress(env.From)
	if err := m.AddToFormat(env.To.Name, env.To.Address); err != nil {
		return nil, err
	}
	if env.ReplyTo != "" {
		if err := m.ReplyTo(env.ReplyTo); err != nil {
			return nil, err
		}
	}
	m.Subject(c.Subject)
	m.SetDateWithValue(env.Date)
	m.SetMessageIDWithValue(env.MessageID)
	m.SetGenHeader("Auto-Submitted", "auto-generated")
	m.SetGenHeader("X-Edulure-Category", string(env.Category))
	if env.Bulk && env.UnsubURL != "" {
		// RFC 8058 needs https for one-click; over plain http (a
		// development kernel) the link is advertised without it.
		if err := m.SetListUnsubscribeOneClick(env.UnsubURL); err != nil {
			m.SetListUnsubscribe(env.UnsubURL)
		}
		m.SetGenHeader("Precedence", "bulk")
	}
	m.SetBodyString(mail.TypeTextPlain, text)
	m.AddAlternativeString(mail.TypeTextHTML, html)
	return m, nil
}

// messageID is the Message-ID of a delivery: bounces name it.
func messageID(notificationID string, ch Channel, domainOf string) string {
	domain := "edulure.invalid"
	if _, d, ok := strings.Cut(domainOf, "@"); ok && d != "" {
		domain = d
	}
	return notificationID + "." + string(ch) + "@" + domain
}
