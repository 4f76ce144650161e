package messaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/messaging/internal/messaging"
	"github.com/edulure/edulure/plugins/messaging/mailcatch"
)

func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }

// env is a harness of the plugin whose mail goes to a real SMTP server on
// loopback (mailcatch), with a clock the test moves.
type env struct {
	t    *testing.T
	h    *plugintest.Harness
	p    *messaging.Plugin
	mail *mailcatch.Server

	mu  sync.Mutex
	now time.Time
}

func setup(t *testing.T, operator ...string) *env {
	t.Helper()
	srv, err := mailcatch.Start("127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	extra := ""
	if len(operator) > 0 {
		extra = "," + operator[0]
	}
	op := fmt.Sprintf(`{"smtp_host": %q, "smtp_port": %d, "smtp_security": "none", "app_url": "https://app.edulure.test",
		"api_url": "https://api.edulure.test", "sender_email": "no-reply@edulure.test", "allow_insecure_push_endpoints": true%s}`, srv.Host, srv.Port, extra)
	e := &env{t: t, p: messaging.New(), mail: srv, now: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)}
	e.p.SetClock(e.clock)
	e.h = plugintest.New(t, e.p, plugintest.WithOperatorConfig(json.RawMessage(op)))
	return e
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) deliver(ev plugintest.Event) {
	e.t.Helper()
	require.NoError(e.t, e.h.Deliver(e.t, ev))
}

// person makes a member of an institution known to the plugin, as the
// kernel's events do.
func (e *env) person(tenant, email, name string, roles ...string) sdk.Principal {
	e.t.Helper()
	p := plugintest.User(tenant, roles...)
	e.deliver(plugintest.Event{Type: messaging.EventUserCreated, Data: map[string]any{"user_id": p.UserID, "email": email, "display_name": name}})
	e.deliver(plugintest.Event{Type: messaging.EventMemberJoined, TenantID: tenant, Data: map[string]any{"user_id": p.UserID, "roles": roles}})
	e.deliver(plugintest.Event{Type: messaging.EventEmailVerified, Data: map[string]any{"user_id": p.UserID, "email": email}})
	return p
}

func (e *env) do(p sdk.Principal, method, path string, body any, status int) *plugintest.Result {
	e.t.Helper()
	res := e.h.Do(p, method, path, body)
	require.Equal(e.t, status, res.Status, "%s %s: %s", method, path, res)
	return res
}

func (e *env) fanout(tenant string) string {
	e.t.Helper()
	out, err := e.h.RunJob(e.t, messaging.JobFanout, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(e.t, err)
	return out
}

// waitMail waits for n messages to an address (the SMTP exchange is over
// when the job returns; the wait only covers the server's bookkeeping).
func (e *env) waitMail(to string, n int) []mailcatch.Message {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := e.mail.WaitFor(ctx, func([]mailcatch.Message) bool { return len(e.mail.To(to)) >= n })
	require.NoError(e.t, err, "waiting for %d message(s) to %s", n, to)
	return e.mail.To(to)
}

func graded(tenant, user string, percent int) plugintest.Event {
	return plugintest.Event{Type: messaging.EventSubmissionGraded, TenantID: tenant, Source: "courses", Data: map[string]any{
		"submission_id": plugintest.NewID(), "assignment_id": plugintest.NewID(), "course_id": plugintest.NewID(),
		"user_id": user, "percent": percent, "passed": percent >= 50}}
}

type explanation struct {
	Channels []struct {
		Channel, Status, ReasonCode, Reason string
	} `json:"-"`
}

func (e *env) explain(p sdk.Principal, id string) map[string]map[string]any {
	e.t.Helper()
	var out struct {
		Channels []map[string]any `json:"channels"`
	}
	e.do(p, "GET", "/api/v1/notifications/"+id+"/explain", nil, 200).JSON(e.t, &out)
	m := map[string]map[string]any{}
	for _, c := range out.Channels {
		m[c["channel"].(string)] = c
	}
	return m
}

func (e *env) inbox(p sdk.Principal) []map[string]any {
	e.t.Helper()
	var page struct {
		Items []map[string]any `json:"items"`
	}
	e.do(p, "GET", "/api/v1/notifications", nil, 200).JSON(e.t, &page)
	return page.Items
}

// The verification email of the kernel's sign-up reaches the address with
// its link, once, with both parts and no unsubscribe headers.
func TestVerificationEmail(t *testing.T) {
	e := setup(t)
	user := plugintest.NewID()
	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: messaging.EventVerification, Data: map[string]any{
		"user_id": user, "email": "ada@example.test", "display_name": "Ada Lovelace",
		"token": "edv_secret-token", "expires_at": "2026-03-03T10:00:00Z"}}
	e.deliver(ev)
	e.deliver(ev) // a redelivery sends nothing more
	msgs := e.waitMail("ada@example.test", 1)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, "Confirm your email address", m.Subject)
	require.Contains(t, m.Text, "https://app.edulure.test/verify-email?token=edv_secret-token")
	require.Contains(t, m.HTML, `href="https://app.edulure.test/verify-email?token=edv_secret-token"`)
	require.Contains(t, m.Text, "Hi Ada,")
	require.Empty(t, m.Header.Get("List-Unsubscribe"), "transactional mail carries no unsubscribe headers")
	require.Equal(t, "security", m.Header.Get("X-Edulure-Category"))
	require.Equal(t, "no-reply@edulure.test", m.From)

	var n int
	require.NoError(t, e.h.DB().QueryRow(t.Context(), `SELECT count(*) FROM plugin_messaging.platform_deliveries WHERE user_id = $1 AND status = 'sent'`, user).Scan(&n))
	require.Equal(t, 1, n)
	// The token is not kept.
	e.h.RequireNoTrace(t, "edv_secret-token")

	// A sealed token (the kernel failed to open it) is an error, not a mail.
	sealed := ev
	sealed.ID = plugintest.NewEventID()
	sealed.Data = map[string]any{"user_id": user, "email": "ada@example.test", "display_name": "Ada", "token": "sealed:abc", "expires_at": "2026-03-03T10:00:00Z"}
	require.ErrorContains(t, e.h.Deliver(t, sealed), "sealed")
}

// A transient SMTP failure fails the event (the kernel redelivers it); a
// refusal for good is recorded and not retried.
func TestAccountMailFailures(t *testing.T) {
	e := setup(t)
	e.mail.Refuse("later@example.test", 451)
	ev := plugintest.Event{Type: messaging.EventPasswordReset, Data: map[string]any{
		"user_id": plugintest.NewID(), "email": "later@example.test", "display_name": "", "token": "prt_x", "expires_at": "2026-03-03T10:00:00Z"}}
	require.Error(t, e.h.Deliver(t, ev))
	e.mail.Refuse("later@example.test", 0)
	ev.Attempt = 2
	require.NoError(t, e.h.Deliver(t, ev))
	m := e.waitMail("later@example.test", 1)[0]
	require.Equal(t, "Reset your password", m.Subject)
	require.Contains(t, m.Text, "reset-password?token=prt_x")

	e.mail.Refuse("gone@example.test", 550)
	user := plugintest.NewID()
	require.NoError(t, e.h.Deliver(t, plugintest.Event{Type: messaging.EventPasswordReset, Data: map[string]any{
		"user_id": user, "email": "gone@example.test", "display_name": "", "token": "prt_y", "expires_at": "2026-03-03T10:00:00Z"}}))
	var status string
	require.NoError(t, e.h.DB().QueryRow(t.Context(), `SELECT status FROM plugin_messaging.platform_deliveries WHERE user_id = $1`, user).Scan(&status))
	require.Equal(t, "bounced", status)
}

// A password changed while signed in is told to the account's address,
// once, with what to do if it was not them.
func TestPasswordChangedEmail(t *testing.T) {
	e := setup(t)
	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: messaging.EventPasswordChanged, Data: map[string]any{
		"user_id": plugintest.NewID(), "email": "ada@example.test", "display_name": "Ada", "changed_at": "2026-03-03T10:00:00Z", "sessions_revoked": 2}}
	e.deliver(ev)
	e.deliver(ev)
	msgs := e.waitMail("ada@example.test", 1)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, "Your password was changed", m.Subject)
	require.Contains(t, m.Text, "10:00 UTC on 3 March 2026")
	require.Contains(t, m.Text, "Your other sessions (2) were signed out.")
	require.Contains(t, m.Text, "https://app.edulure.test/forgot-password")
	require.Empty(t, m.Header.Get("List-Unsubscribe"), "account mail cannot be turned off")
}

// An invitation is emailed with its accept link and no unsubscribe
// headers, once.
func TestInvitationEmail(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	inv := plugintest.NewID()
	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: messaging.EventInvitationCreated, TenantID: tenant, Data: map[string]any{
		"invitation_id": inv, "email": "new@example.test", "roles": []string{"instructor"}, "token": "inv_tok",
		"tenant_slug": "uni", "tenant_name": "Uni of Tests", "expires_at": "2026-03-09T10:00:00Z"}}
	e.deliver(ev)
	e.deliver(ev)
	msgs := e.waitMail("new@example.test", 1)
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, "You are invited to join Uni of Tests", m.Subject)
	require.Contains(t, m.Text, "https://app.edulure.test/accept-invitation?institution=uni&token=inv_tok")
	require.Contains(t, m.Text, "as instructor")
	require.Empty(t, m.Header.Get("List-Unsubscribe"))
	e.h.RequireNoTrace(t, "inv_tok")
}

// A graded submission notifies the learner in the app at once and by
// email through the fan-out job, with one-click unsubscribe headers; the
// explain route says what happened on each channel.
func TestGradedNotificationEmailAndInbox(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	learner := e.person(tenant, "lea@example.test", "Léa Martin", "learner")
	e.deliver(graded(tenant, learner.UserID, 85))

	items := e.inbox(learner)
	require.Len(t, items, 1)
	require.Contains(t, items[0]["title"], "85%")
	id := items[0]["id"].(string)
	ex := e.explain(learner, id)
	require.Equal(t, "sent", ex["in_app"]["status"])
	require.Equal(t, "pending", ex["email"]["status"])

	// The queued event asks for the fan-out job.
	var queued int
	for _, p := range e.h.Published(t, tenant) {
		if p.Type == messaging.EventNotificationsQueued {
			queued++
		}
	}
	require.Equal(t, 1, queued)
	require.Contains(t, e.fanout(tenant), "email.sent 1")
	m := e.waitMail("lea@example.test", 1)[0]
	require.Contains(t, m.Subject, "85%")
	unsub := strings.Trim(m.Header.Get("List-Unsubscribe"), "<>")
	require.True(t, strings.HasPrefix(unsub, "https://api.edulure.test/api/v1/unsubscribe/"), unsub)
	require.Equal(t, "List-Unsubscribe=One-Click", m.Header.Get("List-Unsubscribe-Post"))
	require.Contains(t, m.Text, "Hi Léa,")
	require.Contains(t, m.HTML, "Unsubscribe")
	require.Contains(t, m.Text, "https://app.edulure.test/submissions/")

	ex = e.explain(learner, id)
	require.Equal(t, "sent", ex["email"]["status"])
	require.Equal(t, "suppressed", ex["push"]["status"])
	require.Equal(t, "no_device", ex["push"]["reason_code"])
	// A second run sends nothing again.
	require.Equal(t, "nothing due", e.fanout(tenant))
	require.Len(t, e.mail.To("lea@example.test"), 1)

	// Someone else cannot read the explanation; an admin can.
	other := e.person(tenant, "o@example.test", "Other", "learner")
	require.Equal(t, 404, e.h.Do(other, "GET", "/api/v1/notifications/"+id+"/explain", nil).Status)
	admin := e.person(tenant, "adm@example.test", "Admin", "admin")
	e.do(admin, "GET", "/api/v1/notifications/"+id+"/explain", nil, 200)
	// Another institution's admin sees nothing.
	elsewhere := plugintest.NewTenant()
	require.Equal(t, 404, e.h.Do(plugintest.User(elsewhere, "admin"), "GET", "/api/v1/notifications/"+id+"/explain", nil).Status)

	// One-click unsubscribe: a GET changes nothing, a POST without any
	// session unsubscribes from grades email.
	u, err := url.Parse(unsub)
	require.NoError(t, err)
	res := e.h.Do(plugintest.Anonymous(), "GET", u.Path, nil)
	require.Equal(t, 200, res.Status, res)
	require.Contains(t, string(res.Body), "Nothing has changed yet")
	e.deliver(graded(tenant, learner.UserID, 40))
	e.fanout(tenant)
	e.waitMail("lea@example.test", 2)
	res = e.h.Do(plugintest.Anonymous(), "POST", u.Path, nil)
	require.Equal(t, 200, res.Status, res)
	require.Contains(t, string(res.Body), `"grades"`)
	require.Equal(t, 404, e.h.Do(plugintest.Anonymous(), "POST", u.Path+"x", nil).Status, "a forged token")
	e.deliver(graded(tenant, learner.UserID, 90))
	e.fanout(tenant)
	require.Len(t, e.mail.To("lea@example.test"), 2, "unsubscribed: no more grades email")
	items = e.inbox(learner)
	require.Len(t, items, 3, "the inbox still gets them")
	ex = e.explain(learner, items[0]["id"].(string))
	require.Equal(t, "suppressed", ex["email"]["status"])
	require.Equal(t, "preference_off", ex["email"]["reason_code"])
	require.Contains(t, ex["email"]["reason"], "unsubscribed")
}

// Critical messages ignore a person's opt-out; a person's choice beats
// the institution's default; turning off security is refused.
func TestPreferencesAndCritical(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	learner := e.person(tenant, "p@example.test", "Pat", "learner")
	res := e.h.Do(learner, "PUT", "/api/v1/notifications/preferences", map[string]any{"categories": map[string]any{"security": map[string]any{"email": "off"}}})
	require.Equal(t, 422, res.Status, res)
	e.do(learner, "PUT", "/api/v1/notifications/preferences", map[string]any{"categories": map[string]any{"grades": map[string]any{"email": "off", "in_app": "off"}}}, 200)
	e.deliver(graded(tenant, learner.UserID, 70))
	require.Empty(t, e.inbox(learner))
	// A change of roles is a security notification: it goes whatever the choices.
	e.deliver(plugintest.Event{Type: messaging.EventMemberRolesChanged, TenantID: tenant, Data: map[string]any{"user_id": learner.UserID, "roles": []string{"learner", "instructor"}, "previous_roles": []string{"learner"}}})
	e.fanout(tenant)
	m := e.waitMail("p@example.test", 1)
	require.Len(t, m, 1)
	require.Contains(t, m[0].Subject, "Your roles changed")
	require.Empty(t, m[0].Header.Get("List-Unsubscribe"))
}

// Email in digest mode waits for the digest hour and goes out as one
// message listing each item once, however often the job runs; a hidden
// or opted-out item is left out.
func TestDigestWithoutDuplicates(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	learner := e.person(tenant, "d@example.test", "Dee", "learner")
	e.do(learner, "PUT", "/api/v1/notifications/preferences", map[string]any{"time_zone": "Europe/Paris", "digest_hour": 18,
		"categories": map[string]any{"grades": map[string]any{"email": "digest"}, "certificates": map[string]any{"email": "digest"}}}, 200)
	for i := range 3 {
		e.deliver(graded(tenant, learner.UserID, 60+i))
	}
	// A certificate waits for the digest too, then the person mutes
	// certificates email: it must not leak into the digest.
	e.deliver(plugintest.Event{Type: messaging.EventCertificateIssued, TenantID: tenant, Source: "courses", Data: map[string]any{
		"certificate_id": plugintest.NewID(), "course_id": plugintest.NewID(), "user_id": learner.UserID}})
	e.do(learner, "PUT", "/api/v1/notifications/preferences", map[string]any{"categories": map[string]any{"certificates": map[string]any{"email": "off"}}}, 200)
	require.NotContains(t, e.fanout(tenant), "email")
	require.Empty(t, e.mail.To("d@example.test"))
	items := e.inbox(learner)
	id := items[len(items)-1]["id"].(string) // the first grade
	require.Equal(t, "digest", e.explain(learner, id)["email"]["status"])

	e.advance(8 * time.Hour) // 18:00 Paris is 17:00 UTC; 10:00 + 8 h is past it
	var wg sync.WaitGroup
	for range 3 { // overlapping runs: one digest
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.h.RunJob(t, messaging.JobFanout, plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
		}()
	}
	wg.Wait()
	e.fanout(tenant)
	msgs := e.waitMail("d@example.test", 1)
	require.Len(t, msgs, 1, "one digest")
	require.Contains(t, msgs[0].Subject, "3 updates")
	for _, p := range []string{"graded: 60%", "graded: 61%", "graded: 62%"} {
		require.Equal(t, 1, strings.Count(msgs[0].Text, p), "%s once in the digest:\n%s", p, msgs[0].Text)
	}
	require.NotEmpty(t, msgs[0].Header.Get("List-Unsubscribe"))
	require.NotContains(t, msgs[0].Text, "certificate", "muted content stays out of the digest")
	ex := e.explain(learner, id)
	require.Equal(t, "digested", ex["email"]["status"])
}

// A recipient the server refuses for good is recorded as bounced and
// gets no more non-critical email; a transient failure is retried.
func TestBounceAndRetry(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	a := e.person(tenant, "bounce@example.test", "B", "learner")
	b := e.person(tenant, "retry@example.test", "R", "learner")
	e.mail.Refuse("bounce@example.test", 550)
	e.mail.Refuse("retry@example.test", 451)
	e.deliver(graded(tenant, a.UserID, 50))
	e.deliver(graded(tenant, b.UserID, 50))
	e.fanout(tenant)
	exA := e.explain(a, e.inbox(a)[0]["id"].(string))
	require.Equal(t, "bounced", exA["email"]["status"])
	idB := e.inbox(b)[0]["id"].(string)
	require.Equal(t, "retrying", e.explain(b, idB)["email"]["status"])
	e.mail.Refuse("retry@example.test", 0)
	require.Equal(t, "nothing due", e.fanout(tenant), "not before its backoff")
	e.advance(2 * time.Minute)
	e.fanout(tenant)
	e.waitMail("retry@example.test", 1)
	require.Equal(t, "sent", e.explain(b, idB)["email"]["status"])

	e.deliver(graded(tenant, a.UserID, 51))
	e.fanout(tenant)
	ex := e.explain(a, e.inbox(a)[0]["id"].(string))
	require.Equal(t, "suppressed", ex["email"]["status"])
	require.Equal(t, "address_bounced", ex["email"]["reason_code"])
}

// One institution's broadcast cannot starve another's: with a shared
// limit of 10 a minute, a small institution's mail goes in the same minute
// as the big one's first share.
func TestThrottlingFairness(t *testing.T) {
	e := setup(t, `"channel_email_per_minute": 10`)
	big, small := plugintest.NewTenant(), plugintest.NewTenant()
	var bigPeople []sdk.Principal
	for i := range 30 {
		bigPeople = append(bigPeople, e.person(big, fmt.Sprintf("b%d@example.test", i), "B", "learner"))
	}
	smallPeople := []sdk.Principal{e.person(small, "s0@example.test", "S", "learner"), e.person(small, "s1@example.test", "S", "learner")}
	for _, p := range bigPeople {
		e.deliver(graded(big, p.UserID, 50))
	}
	for _, p := range smallPeople {
		e.deliver(graded(small, p.UserID, 50))
	}
	out := e.fanout(big)
	require.Contains(t, out, "email.throttled", out)
	e.fanout(small)
	e.waitMail("s0@example.test", 1)
	e.waitMail("s1@example.test", 1)
	sent := 0
	for _, p := range bigPeople {
		sent += len(e.mail.To(e.emailOf(p)))
	}
	require.LessOrEqual(t, sent, 8, "the big institution left room for the small one")
	ex := e.explain(bigPeople[29], e.inbox(bigPeople[29])[0]["id"].(string))
	require.Equal(t, "throttled", ex["email"]["status"])
	require.Equal(t, "throttled_channel", ex["email"]["reason_code"])
	// The next minute, the rest goes.
	for range 4 {
		e.advance(time.Minute)
		e.fanout(big)
	}
	total := 0
	for _, p := range bigPeople {
		total += len(e.mail.To(e.emailOf(p)))
	}
	require.Equal(t, 30, total)
}

func (e *env) emailOf(p sdk.Principal) string {
	var email string
	require.NoError(e.t, e.h.DB().QueryRow(e.t.Context(), `SELECT email FROM plugin_messaging.people WHERE user_id = $1`, p.UserID).Scan(&email))
	return email
}

// A provider's signed bounce or complaint report is recorded once; an
// unsigned, stale or replayed one changes nothing.
func TestProviderReports(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	e.h.SetTenantConfig(tenant, []byte(`{"webhook_signing_key": "whsec-test-key"}`))
	learner := e.person(tenant, "c@example.test", "Cy", "learner")
	e.deliver(graded(tenant, learner.UserID, 50))
	e.fanout(tenant)
	m := e.waitMail("c@example.test", 1)[0]
	msgID := m.Header.Get("Message-Id")
	require.NotEmpty(t, msgID)
	path := "/api/v1/webhooks/messaging/" + tenant
	report := messaging.MailReport{ID: "evt-1", Type: "complaint", MessageID: msgID, Reason: "user clicked spam", Timestamp: e.clock().Unix()}
	report.Signature = strings.Repeat("0", 64)
	require.Equal(t, 401, e.h.Do(plugintest.Anonymous(), "POST", path, report).Status)
	report.Signature = messaging.SignReport("whsec-test-key", report)
	var res map[string]any
	r := e.h.Do(plugintest.Anonymous(), "POST", path, report)
	require.Equal(t, 200, r.Status, r)
	r.JSON(t, &res)
	require.Equal(t, true, res["applied"])
	r = e.h.Do(plugintest.Anonymous(), "POST", path, report)
	r.JSON(t, &res)
	require.Equal(t, false, res["applied"], "a replay changes nothing")
	// Signed for another institution: refused.
	require.Equal(t, 401, e.h.Do(plugintest.Anonymous(), "POST", "/api/v1/webhooks/messaging/"+plugintest.NewTenant(), report).Status)
	stale := report
	stale.ID, stale.Timestamp = "evt-2", e.clock().Add(-time.Hour).Unix()
	stale.Signature = messaging.SignReport("whsec-test-key", stale)
	require.Equal(t, 422, e.h.Do(plugintest.Anonymous(), "POST", path, stale).Status)

	ex := e.explain(learner, e.inbox(learner)[0]["id"].(string))
	require.Equal(t, "complained", ex["email"]["status"])
	var prefs struct {
		Categories []map[string]any `json:"categories"`
		Email      string           `json:"email_status"`
	}
	e.do(learner, "GET", "/api/v1/notifications/preferences", nil, 200).JSON(t, &prefs)
	require.Equal(t, "complained", prefs.Email)
	for _, c := range prefs.Categories {
		if c["category"] == "grades" {
			require.Equal(t, "off", c["email"].(map[string]any)["mode"])
			require.Equal(t, "complaint", c["email"].(map[string]any)["source"])
		}
	}
}

// Quiet hours in the person's time zone hold email and push until they
// end; critical messages go at once.
func TestQuietHours(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	learner := e.person(tenant, "q@example.test", "Quinn", "learner")
	e.do(learner, "PUT", "/api/v1/notifications/preferences", map[string]any{"time_zone": "Europe/Paris", "quiet_hours": "22:00-07:00"}, 200)
	e.mu.Lock()
	e.now = time.Date(2026, 3, 2, 23, 0, 0, 0, time.UTC) // midnight in Paris
	e.mu.Unlock()
	e.deliver(graded(tenant, learner.UserID, 64))
	e.fanout(tenant)
	require.Empty(t, e.mail.To("q@example.test"))
	id := e.inbox(learner)[0]["id"].(string)
	ex := e.explain(learner, id)
	require.Equal(t, "deferred", ex["email"]["status"])
	require.Equal(t, "quiet_hours", ex["email"]["reason_code"])
	require.Equal(t, "2026-03-03T06:00:00Z", ex["email"]["next_attempt_at"], "07:00 in Paris")
	require.Equal(t, "sent", ex["in_app"]["status"], "the inbox is not held")

	// A security message goes through quiet hours.
	e.deliver(plugintest.Event{Type: messaging.EventMemberRolesChanged, TenantID: tenant, Data: map[string]any{"user_id": learner.UserID, "roles": []string{"instructor"}}})
	e.fanout(tenant)
	require.Len(t, e.waitMail("q@example.test", 1), 1)

	e.advance(6*time.Hour + 30*time.Minute) // 06:30 in Paris: still quiet
	e.fanout(tenant)
	require.Len(t, e.mail.To("q@example.test"), 1)
	e.advance(time.Hour)
	e.fanout(tenant)
	msgs := e.waitMail("q@example.test", 2)
	require.Contains(t, msgs[1].Subject, "64%")
	require.Equal(t, "sent", e.explain(learner, id)["email"]["status"])
}

// An address counts as someone's only once verified: until then no
// notification email goes to it (the inbox still works).
func TestUnverifiedAddressGetsNoEmail(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	p := plugintest.User(tenant, "learner")
	e.deliver(plugintest.Event{Type: messaging.EventUserCreated, Data: map[string]any{"user_id": p.UserID, "email": "victim@example.test", "display_name": "Mallory"}})
	e.deliver(plugintest.Event{Type: messaging.EventMemberJoined, TenantID: tenant, Data: map[string]any{"user_id": p.UserID, "roles": []string{"learner"}}})
	e.deliver(graded(tenant, p.UserID, 50))
	e.fanout(tenant)
	require.Empty(t, e.mail.To("victim@example.test"))
	ex := e.explain(p, e.inbox(p)[0]["id"].(string))
	require.Equal(t, "suppressed", ex["email"]["status"])
	require.Equal(t, "address_unverified", ex["email"]["reason_code"])

	e.deliver(plugintest.Event{Type: messaging.EventEmailVerified, Data: map[string]any{"user_id": p.UserID, "email": "victim@example.test"}})
	e.deliver(graded(tenant, p.UserID, 51))
	e.fanout(tenant)
	require.Len(t, e.waitMail("victim@example.test", 1), 1)
	// A new address is not proven by the old one's proof.
	e.deliver(plugintest.Event{Type: messaging.EventUserCreated, Data: map[string]any{"user_id": p.UserID, "email": "other@example.test", "display_name": "M"}})
	e.deliver(graded(tenant, p.UserID, 52))
	e.fanout(tenant)
	require.Empty(t, e.mail.To("other@example.test"))
}

// A delivery that keeps failing for a passing reason is recorded as
// failed after max_attempts, with the server's words.
func TestGiveUpAfterMaxAttempts(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	e.h.SetTenantConfig(tenant, []byte(`{"max_attempts": 2}`))
	p := e.person(tenant, "flaky@example.test", "F", "learner")
	e.mail.Refuse("flaky@example.test", 451)
	e.deliver(graded(tenant, p.UserID, 50))
	e.fanout(tenant)
	id := e.inbox(p)[0]["id"].(string)
	require.Equal(t, "retrying", e.explain(p, id)["email"]["status"])
	e.advance(10 * time.Minute)
	e.fanout(tenant)
	ex := e.explain(p, id)["email"]
	require.Equal(t, "failed", ex["status"])
	require.Equal(t, "gave_up", ex["reason_code"])
	require.Contains(t, ex["reason"], "451")
	require.EqualValues(t, 2, ex["attempts"])
	e.advance(time.Hour)
	require.NotContains(t, e.fanout(tenant), "email", "a failed delivery is not tried again")
}

// The commerce plugin's events reach the buyer: a paid order (with its
// amount in minor units), a refund, a failed invoice; transactional mail
// without unsubscribe headers.
func TestBillingNotifications(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	buyer := e.person(tenant, "buyer@example.test", "Bo", "learner")
	order := plugintest.NewID()
	e.deliver(plugintest.Event{Type: messaging.EventOrderPaid, TenantID: tenant, Source: "commerce", Data: map[string]any{
		"order_id": order, "user_id": buyer.UserID, "currency": "eur", "amount_total": 4990, "items": []any{}}})
	e.deliver(plugintest.Event{Type: messaging.EventOrderRefunded, TenantID: tenant, Source: "commerce", Data: map[string]any{
		"order_id": order, "user_id": buyer.UserID, "currency": "jpy", "amount_total": 500, "amount_refunded": 500, "items": []any{}}})
	e.deliver(plugintest.Event{Type: messaging.EventPaymentFailed, TenantID: tenant, Source: "commerce", Data: map[string]any{
		"invoice_id": plugintest.NewID(), "stripe_invoice_id": "in_1", "currency": "usd", "amount_due": 1000, "amount_paid": 0}}) // no user: no one
	e.fanout(tenant)
	msgs := e.waitMail("buyer@example.test", 2)
	require.Len(t, msgs, 2)
	require.Equal(t, "Payment received (49.90 EUR)", msgs[0].Subject)
	require.Equal(t, "Refund issued (500 JPY)", msgs[1].Subject)
	require.Empty(t, msgs[0].Header.Get("List-Unsubscribe"), "billing mail is transactional")
}
