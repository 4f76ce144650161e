// Package devmail is the mail catcher of `edulure dev` (make run): an SMTP
// server on loopback (github.com/emersion/go-smtp) that keeps the last
// messages it receives in memory, and a small web page and JSON API that
// list them with their unsubscribe headers, so a newcomer sees the
// invitations and notifications the messaging plugin sends. Nothing
// leaves the machine.
package devmail

import (
	"bytes"
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// keep is how many messages the catcher holds (the oldest go first).
const keep = 500

// Message is one message received.
type Message struct {
	ID                  int       `json:"id"`
	From                string    `json:"from"`
	To                  []string  `json:"to"`
	Subject             string    `json:"subject"`
	Date                time.Time `json:"received_at"`
	ListUnsubscribe     string    `json:"list_unsubscribe,omitempty"`
	ListUnsubscribePost string    `json:"list_unsubscribe_post,omitempty"`
	Text                string    `json:"text"`
	HTML                string    `json:"html,omitempty"`
	raw                 []byte
}

// Catcher is a running catcher.
type Catcher struct {
	SMTPAddr, HTTPAddr string
	SMTPPort           int

	smtp *smtp.Server
	web  *http.Server

	mu   sync.Mutex
	msgs []Message
	next int
}

// Start listens for SMTP on smtpAddr and HTTP on httpAddr; an address
// whose port is taken falls back to a free port on the same host.
func Start(smtpAddr, httpAddr string) (*Catcher, error) {
	sl, err := listen(smtpAddr)
	if err != nil {
		return nil, err
	}
	hl, err := listen(httpAddr)
	if err != nil {
		sl.Close()
		return nil, err
	}
	c := &Catcher{SMTPAddr: sl.Addr().String(), HTTPAddr: hl.Addr().String(), SMTPPort: sl.Addr().(*net.TCPAddr).Port, next: 1}
	c.smtp = smtp.NewServer(backend{c})
	c.smtp.Domain = "localhost"
	c.smtp.MaxMessageBytes = 10 << 20
	c.smtp.MaxRecipients = 100
	c.smtp.ReadTimeout, c.smtp.WriteTimeout = time.Minute, time.Minute
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.page)
	mux.HandleFunc("GET /api/messages", c.list)
	mux.HandleFunc("GET /api/messages/{id}/raw", c.rawMessage)
	c.web = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.smtp.Serve(sl) }()
	go func() { _ = c.web.Serve(hl) }()
	return c, nil
}

func listen(addr string) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.Listen("tcp", net.JoinHostPort(host, "0"))
}

// Close stops both servers.
func (c *Catcher) Close() error {
	return errors.Join(c.smtp.Close(), c.web.Close())
}

// Messages returns what was received, newest first.
func (c *Catcher) Messages() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Message, len(c.msgs))
	for i, m := range c.msgs {
		out[len(c.msgs)-1-i] = m
	}
	return out
}

// Received is how many messages arrived since the start.
func (c *Catcher) Received() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.next - 1
}

// Raw is the bytes of the newest message ("" when none).
func (c *Catcher) Raw() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.msgs) == 0 {
		return nil
	}
	return c.msgs[len(c.msgs)-1].raw
}

func (c *Catcher) add(m Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m.ID = c.next
	c.next++
	c.msgs = append(c.msgs, m)
	if len(c.msgs) > keep {
		c.msgs = c.msgs[len(c.msgs)-keep:]
	}
}

func (c *Catcher) list(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messages": c.Messages()})
}

func (c *Catcher) rawMessage(w http.ResponseWriter, r *http.Request) {
	id, _ := strconv.Atoi(r.PathValue("id"))
	for _, m := range c.Messages() {
		if m.ID == id {
			w.Header().Set("Content-Type", "message/rfc822")
			_, _ = w.Write(m.raw)
			return
		}
	}
	http.NotFound(w, r)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Edulure dev mail</title>
<style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}details{border-bottom:1px solid #ddd;padding:.5rem 0}pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem}small{color:#666}</style></head>
<body><h1>Mail caught by <code>edulure dev</code></h1>
<p><small>SMTP {{.SMTP}} · JSON: <a href="/api/messages">/api/messages</a> · newest first · nothing leaves this machine</small></p>
{{range .Messages}}<details><summary><strong>{{.Subject}}</strong> — to {{range .To}}{{.}} {{end}}<small>{{.Date.Format "15:04:05"}} · <a href="/api/messages/{{.ID}}/raw">raw</a></small></summary>
<p><small>From {{.From}}{{with .ListUnsubscribe}} · List-Unsubscribe: {{.}}{{end}}{{with .ListUnsubscribePost}} · List-Unsubscribe-Post: {{.}}{{end}}</small></p>
<pre>{{.Text}}</pre></details>
{{else}}<p>No mail yet. Invite someone (POST /api/v1/tenant/invitations) or sign up to see one.</p>{{end}}
</body></html>`))

func (c *Catcher) page(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = pageTemplate.Execute(w, map[string]any{"SMTP": c.SMTPAddr, "Messages": c.Messages()})
}

type backend struct{ c *Catcher }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{c: b.c}, nil }

type session struct {
	c    *Catcher
	from string
	to   []string
}

func (s *session) Reset()        { s.from, s.to = "", nil }
func (s *session) Logout() error { return nil }
func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Message{From: s.from, To: append([]string(nil), s.to...), Date: time.Now(), raw: raw}
	if msg, err := mail.ReadMessage(bytes.NewReader(raw)); err == nil {
		m.Subject, _ = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
		m.ListUnsubscribe = msg.Header.Get("List-Unsubscribe")
		m.ListUnsubscribePost = msg.Header.Get("List-Unsubscribe-Post")
		m.Text, m.HTML = parts(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), msg.Body)
	}
	s.c.add(m)
	return nil
}

func parts(contentType, encoding string, body io.Reader) (text, html string) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err != nil {
				return text, html
			}
			t, h := parts(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p)
			if text == "" {
				text = t
			}
			if html == "" {
				html = h
			}
		}
	}
	var rd io.Reader = body
	if strings.EqualFold(strings.TrimSpace(encoding), "quoted-printable") {
		rd = quotedprintable.NewReader(body)
	}
	b, _ := io.ReadAll(io.LimitReader(rd, 1<<20))
	if mt == "text/html" {
		return "", string(b)
	}
	return string(b), ""
}
