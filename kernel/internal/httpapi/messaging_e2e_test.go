package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var messagingPlugin = variant{name: "messaging", version: "0.2.0", module: "plugins/messaging"}

// TestMessagingEndToEnd runs the messaging plugin in the kernel with its
// mail going to a real SMTP server on loopback: a sign-up's verification
// email arrives and its link verifies the address; an admin's invitation
// arrives and its token signs the invitee up; an announcement reaches
// every member of the institution once, in the app and by email with
// one-click unsubscribe, which a POST without a session honours.
func TestMessagingEndToEnd(t *testing.T) {
	t.Parallel()
	catcher := startSMTPCatcher(t)
	cfg := fmt.Sprintf(`{ smtp_host = %q, smtp_port = %d, smtp_security = "none", app_url = "https://app.edulure.test", api_url = "https://api.edulure.test", sender_email = "hello@edulure.test" }`,
		catcher.host, catcher.port)
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: messagingPlugin, config: cfg})
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}

	// 1. Sign-up: the kernel's identity.email_verification.requested.v1
	// becomes an email whose link verifies the address.
	ok(b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "grace@example.test", "password": password, "display_name": "Grace Hopper"}), 201)
	m := catcher.waitFor(t, "grace@example.test", 1)[0]
	require.Equal(t, "Confirm your email address", m.subject)
	require.Empty(t, m.header.Get("List-Unsubscribe"), "transactional mail carries no unsubscribe headers")
	token := linkParam(t, m.text, "https://app.edulure.test/verify-email?", "token")
	require.True(t, strings.HasPrefix(token, "edv_"), token)
	require.Contains(t, m.html, "verify-email?token="+token)
	ok(b.do("POST", "/api/v1/auth/email/verify", "", map[string]any{"token": token}), 204)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM kernel.users WHERE email = 'grace@example.test' AND email_verified_at IS NOT NULL`))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.Equal(c, 1, b.count(`SELECT count(*) FROM plugin_messaging.people WHERE email = 'grace@example.test' AND email_verified`), "identity.email.verified.v1 reached the plugin")
	}, eventually, 20*time.Millisecond)
	require.Equal(t, 0, b.count(`SELECT count(*) FROM plugin_messaging.platform_deliveries WHERE status <> 'sent'`))

	// Grace changes her password while signed in: she is told by email.
	grace := b.login("grace@example.test", "")
	ok(b.do("POST", "/api/v1/me/password", grace, map[string]any{"current_password": password, "new_password": "Another-horse-battery-8"}), 200)
	m = catcher.waitFor(t, "grace@example.test", 2)[1]
	require.Equal(t, "Your password was changed", m.subject)
	require.Contains(t, m.text, "https://app.edulure.test/forgot-password")
	require.NotContains(t, m.text, "Another-horse-battery-8")

	// 2. An invitation: the email carries the token; the invitee signs up with it.
	a := b.institution("uni")
	ok(b.do("POST", "/api/v1/tenant/invitations", a.admin, map[string]any{"email": "alan@example.test", "roles": []string{"learner"}}), 201)
	m = catcher.waitFor(t, "alan@example.test", 1)[0]
	require.Contains(t, m.subject, "You are invited to join")
	inv := linkParam(t, m.text, "https://app.edulure.test/accept-invitation?", "token")
	r := ok(b.do("POST", "/api/v1/auth/signup", "", map[string]any{"email": "alan@example.test", "password": password, "display_name": "Alan Turing", "invitation_token": inv}), 201)
	require.Len(t, r.get("memberships").([]any), 1, "%s", r.Raw)
	alan := b.login("alan@example.test", "uni")

	// 3. An announcement in the institution's space reaches each member
	// once per channel: in the app, and by email through the fan-out job.
	var space string
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		// the membership events reach the plugin asynchronously
		assert.Equal(c, 4, b.count(`SELECT count(*) FROM plugin_messaging.members WHERE tenant_id = $1 AND active`, a.id))
	}, eventually, 20*time.Millisecond)
	for _, s := range ok(b.do("GET", "/api/v1/spaces", a.admin, nil), 200).items() {
		if s["kind"] == "institution" {
			space = s["id"].(string)
		}
	}
	require.NotEmpty(t, space)
	ok(b.do("POST", "/api/v1/spaces/"+space+"/posts", a.admin, map[string]any{"body": "<p>Exams start <b>Monday</b>.</p><script>alert(1)</script>", "kind": "announcement"}), 201)
	requireProblem(t, b.do("POST", "/api/v1/spaces/"+space+"/posts", a.learner, map[string]any{"body": "Me too", "kind": "announcement"}), 403, "not_a_moderator")
	var note map[string]any
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		items := b.do("GET", "/api/v1/notifications", alan, nil).items()
		if assert.Len(c, items, 1) {
			note = items[0]
		}
	}, eventually, 20*time.Millisecond)
	require.Contains(t, note["title"], "Exams start Monday")
	announced := func(who string) []caught {
		var out []caught
		for _, m := range catcher.to(who) {
			if strings.Contains(m.subject, "Exams start Monday") {
				out = append(out, m)
			}
		}
		return out
	}
	for who, before := range map[string]int{"instructor@uni.test": 0, "learner@uni.test": 0, "alan@example.test": 1} {
		catcher.waitFor(t, who, before+1)
		msgs := announced(who)
		require.Len(t, msgs, 1, who)
		require.NotContains(t, msgs[0].html, "<script>")
		require.Contains(t, msgs[0].text, "Exams start Monday.")
		require.Contains(t, msgs[0].html, "<b>Monday</b>", "the announcement's rich text, sanitised")
	}
	// Once each: the author gets nothing; nobody gets it twice, whatever
	// the schedule adds.
	require.Empty(t, catcher.to("admin@uni.test"))
	ex := ok(b.do("GET", "/api/v1/notifications/"+note["id"].(string)+"/explain", alan, nil), 200)
	require.Contains(t, string(ex.Raw), `"status":"sent"`)
	m = announced("alan@example.test")[0]
	unsub := strings.Trim(m.header.Get("List-Unsubscribe"), "<>")
	require.Equal(t, "List-Unsubscribe=One-Click", m.header.Get("List-Unsubscribe-Post"))
	u, err := url.Parse(unsub)
	require.NoError(t, err)
	// A GET (a link scanner) changes nothing; the POST a mail client sends,
	// with no session, unsubscribes.
	ok(b.do("GET", u.Path, "", nil), 200)
	require.Equal(t, 0, b.count(`SELECT count(*) FROM plugin_messaging.preferences WHERE source = 'unsubscribe'`))
	ok(b.do("POST", u.Path, "", "List-Unsubscribe=One-Click", "Content-Type", "application/x-www-form-urlencoded"), 200)
	require.Equal(t, 1, b.count(`SELECT count(*) FROM plugin_messaging.preferences WHERE source = 'unsubscribe' AND category = 'announcements' AND channel = 'email'`))
	requireProblem(t, b.do("POST", u.Path[:len(u.Path)-2]+"xx", "", nil), 404, "unknown_token")

	// Another institution sees none of it.
	other := b.institution("elsewhere")
	requireProblem(t, b.do("GET", "/api/v1/notifications/"+note["id"].(string)+"/explain", other.admin, nil), 404, "not-found")
	require.Len(t, announced("alan@example.test"), 1)

	// A provider report for an institution without a key, or for no
	// institution, is refused with a problem, not a failure.
	report := map[string]any{"id": "r1", "type": "bounce", "message_id": "x@y", "timestamp": time.Now().Unix(), "signature": strings.Repeat("a", 64)}
	requireProblem(t, b.do("POST", "/api/v1/webhooks/messaging/"+a.id, "", report), 401, "bad_signature")
	r = b.do("POST", "/api/v1/webhooks/messaging/"+uuid.NewString(), "", report)
	require.Contains(t, []int{401, 404}, r.Status, "%s", r.Raw)
}

// linkParam finds a link starting with prefix in text and returns one of
// its query parameters.
func linkParam(t *testing.T, text, prefix, name string) string {
	t.Helper()
	i := strings.Index(text, prefix)
	require.GreaterOrEqual(t, i, 0, "no link %s in:\n%s", prefix, text)
	link := regexp.MustCompile(`^\S+`).FindString(text[i:])
	u, err := url.Parse(link)
	require.NoError(t, err)
	return u.Query().Get(name)
}

// smtpCatcher is a real SMTP server on loopback that keeps what it gets.
type smtpCatcher struct {
	host string
	port int
	mu   sync.Mutex
	msgs []caught
	wake chan struct{}
}

type caught struct {
	to         []string
	header     mail.Header
	subject    string
	text, html string
}

func startSMTPCatcher(t *testing.T) *smtpCatcher {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	c := &smtpCatcher{wake: make(chan struct{})}
	addr := ln.Addr().(*net.TCPAddr)
	c.host, c.port = addr.IP.String(), addr.Port
	srv := smtp.NewServer(c)
	srv.Domain = "localhost"
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return c
}

func (c *smtpCatcher) NewSession(*smtp.Conn) (smtp.Session, error) { return &catchSession{c: c}, nil }

func (c *smtpCatcher) to(addr string) []caught {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []caught
	for _, m := range c.msgs {
		for _, r := range m.to {
			if strings.EqualFold(r, addr) {
				out = append(out, m)
			}
		}
	}
	return out
}

// waitFor waits (woken by each message) for n messages to addr.
func (c *smtpCatcher) waitFor(t *testing.T, addr string, n int) []caught {
	t.Helper()
	deadline := time.NewTimer(eventually)
	defer deadline.Stop()
	for {
		c.mu.Lock()
		wake := c.wake
		c.mu.Unlock()
		if got := c.to(addr); len(got) >= n {
			return got
		}
		select {
		case <-wake:
		case <-deadline.C:
			require.FailNow(t, "no mail", "waiting for %d message(s) to %s", n, addr)
		}
	}
}

type catchSession struct {
	c  *smtpCatcher
	to []string
}

func (s *catchSession) Reset()                               { s.to = nil }
func (s *catchSession) Logout() error                        { return nil }
func (s *catchSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *catchSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *catchSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	msg, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	dec := new(mime.WordDecoder)
	subject, _ := dec.DecodeHeader(msg.Header.Get("Subject"))
	m := caught{to: s.to, header: msg.Header, subject: subject}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if err != nil {
			break
		}
		var body io.Reader = p
		if strings.EqualFold(p.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
			body = quotedprintable.NewReader(p)
		}
		b, _ := io.ReadAll(body)
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			m.html = string(b)
		} else {
			m.text = string(b)
		}
	}
	s.c.mu.Lock()
	s.c.msgs = append(s.c.msgs, m)
	close(s.c.wake)
	s.c.wake = make(chan struct{})
	s.c.mu.Unlock()
	return nil
}

// TestMessagingGradedSubmission runs the courses and messaging plugins
// together: the learner's cohort space follows the enrolment, and a
// graded submission reaches the learner live in the app (Server-Sent
// Events through the kernel) and by email, as their preferences say.
func TestMessagingGradedSubmission(t *testing.T) {
	t.Parallel()
	catcher := startSMTPCatcher(t)
	cfg := fmt.Sprintf(`{ smtp_host = %q, smtp_port = %d, smtp_security = "none", app_url = "https://app.edulure.test", api_url = "https://api.edulure.test" }`, catcher.host, catcher.port)
	b, _ := withPluginsEnv(t, fastEvents, pluginBlock{variant: coursesPlugin}, pluginBlock{variant: messagingPlugin, config: cfg})
	a := b.institution("college")
	ok := func(r response, status int) response {
		t.Helper()
		require.Equal(t, status, r.Status, "%s", r.Raw)
		return r
	}
	course := ok(b.do("POST", "/api/v1/courses", a.instructor, map[string]any{"title": "Writing Well"}), 201).str("id")
	module := ok(b.do("POST", "/api/v1/courses/"+course+"/modules", a.instructor, map[string]any{"title": "Essays"}), 201).str("id")
	ok(b.do("POST", "/api/v1/courses/"+course+"/modules/"+module+"/lessons", a.instructor, map[string]any{"title": "Structure", "body": "Intro, body, end."}), 201)
	rubric := ok(b.do("POST", "/api/v1/courses/"+course+"/rubrics", a.instructor, map[string]any{
		"title": "Essay", "criteria": []map[string]any{{"title": "Clarity", "levels": []map[string]any{{"title": "Muddled", "points": 0}, {"title": "Clear", "points": 10}}}},
	}), 201)
	assignment := ok(b.do("POST", "/api/v1/courses/"+course+"/assignments", a.instructor, map[string]any{
		"title": "An essay", "rubric_id": rubric.str("id"), "due_at": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339),
	}), 201).str("id")
	ok(b.do("POST", "/api/v1/courses/"+course+"/publish", a.instructor, map[string]any{"note": "v1"}), 201)
	ok(b.do("POST", "/api/v1/enrolments", a.learner, map[string]any{"course_id": course}), 201)
	submission := ok(b.do("POST", "/api/v1/assignments/"+assignment+"/submissions", a.learner, map[string]any{"body": "My essay."}), 201).str("id")

	// The course's space follows the enrolment and the course's title.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		found := false
		for _, s := range b.do("GET", "/api/v1/spaces?kind=course", a.learner, nil).items() {
			found = found || s["title"] == "Writing Well"
		}
		assert.True(c, found)
	}, eventually, 20*time.Millisecond)

	stream := b.openSSE("/api/v1/notifications/stream", a.learner)
	ok(b.do("POST", "/api/v1/submissions/"+submission+"/grade", a.instructor, map[string]any{
		"levels": map[string]string{rubric.str("criteria", "0", "id"): rubric.str("criteria", "0", "levels", "1", "id")}, "feedback": "Clear."}), 200)
	ev := stream.next(t)
	require.Equal(t, "notification", ev.event)
	require.Contains(t, ev.data, "Writing Well was graded: 100%")
	m := catcher.waitFor(t, "learner@college.test", 1)[0]
	require.Contains(t, m.subject, "100%")
	require.Contains(t, m.text, "https://app.edulure.test/submissions/"+submission)
	require.Equal(t, "List-Unsubscribe=One-Click", m.header.Get("List-Unsubscribe-Post"))
}
