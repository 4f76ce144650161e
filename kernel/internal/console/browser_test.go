package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/app"
)

// chromium finds the browser the test drives: EDULURE_CHROME, or Debian's
// chromium (make deps installs it). Without one the test fails with what to
// do; EDULURE_SKIP_BROWSER=1 skips it on a developer's machine (never in
// CI).
func chromium(t *testing.T) string {
	t.Helper()
	skip := os.Getenv("EDULURE_SKIP_BROWSER") == "1"
	if skip && os.Getenv("CI") == "" {
		t.Skip("EDULURE_SKIP_BROWSER=1: the console's browser test is skipped (make deps installs Chromium; unset it to run the test)")
	}
	if p := os.Getenv("EDULURE_CHROME"); p != "" {
		if _, err := exec.LookPath(p); err != nil {
			t.Fatalf("EDULURE_CHROME=%s is not a program that can run: %v", p, err)
		}
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is not installed, and the console's browser test needs it: run `make deps` " +
		"(apt-get install chromium), or set EDULURE_CHROME to a Chrome binary; on a developer's machine " +
		"EDULURE_SKIP_BROWSER=1 skips the test (not in CI)")
	return ""
}

// axeSource is axe-core, fetched at its pinned version by
// scripts/ensure-axe.sh (which make deps runs; the test runs it too).
func axeSource(t *testing.T) string {
	t.Helper()
	out, err := exec.Command(filepath.Join("..", "..", "..", "scripts", "ensure-axe.sh")).Output()
	require.NoError(t, err, "fetching axe-core with scripts/ensure-axe.sh (npm needed): %s", exitStderr(err))
	src, err := os.ReadFile(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	return string(src)
}

func exitStderr(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}

// browser is a Chromium tab on the console.
type browser struct {
	t        *testing.T
	ctx      context.Context
	base     string
	axe      string
	shots    string
	lastTOTP time.Time // the time step of the last code used
}

func newBrowser(t *testing.T, exe, base string) *browser {
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1280, 900))
	// A bound against a wedged browser, not a measurement.
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	// Destructive forms ask with confirm(): say yes.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	shots := os.Getenv("EDULURE_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join("..", "..", "..", ".test-results", "console-screenshots")
	}
	require.NoError(t, os.MkdirAll(shots, 0o755))
	return &browser{t: t, ctx: ctx, base: base, axe: axeSource(t), shots: shots}
}

func (b *browser) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	require.NoError(b.t, chromedp.Do(b.ctx, steps...))
}

// open navigates to a console path and waits for its heading.
func (b *browser) open(path, heading string) {
	b.t.Helper()
	b.do(chromedp.Navigate(b.base+path), chromedp.WaitVisible(h1(heading)))
}

func h1(text string) string { return "//h1[normalize-space()=" + xq(text) + "]" }

// flash is the page's status message containing text.
func flash(text string) string { return "//p[@class='flash' and contains(., " + xq(text) + ")]" }

// xq quotes a string for XPath.
func xq(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return `"` + s + `"`
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(sel))
	require.NoError(b.t, err)
	return s
}

// shot saves a screenshot of the whole page.
func (b *browser) shot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	require.NoError(b.t, err)
	require.NoError(b.t, os.WriteFile(filepath.Join(b.shots, name+".png"), png, 0o644))
}

type axeViolation struct {
	ID     string   `json:"id"`
	Impact string   `json:"impact"`
	Help   string   `json:"help"`
	Nodes  []string `json:"nodes"`
}

// accessible runs axe-core on the page: no serious or critical violation
// of WCAG 2.1 A/AA or axe's best practices.
func (b *browser) accessible(page string) {
	b.t.Helper()
	for _, v := range b.violations() {
		b.t.Errorf("%s: accessibility (%s) %s: %s at %v", page, v.Impact, v.ID, v.Help, v.Nodes)
	}
}

// violations are axe-core's serious and critical findings on the page.
func (b *browser) violations() []axeViolation {
	b.t.Helper()
	b.do(chromedp.Evaluate[chromedp.Void](b.axe + "\n;undefined"))
	vs, err := chromedp.Run(b.ctx, chromedp.Evaluate[[]axeViolation](`axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]}})
		.then(r => r.violations.map(v => ({id: v.id, impact: v.impact || "", help: v.help, nodes: v.nodes.map(n => n.target.join(" "))})))`, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err)
	var out []axeViolation
	for _, v := range vs {
		if v.Impact == "serious" || v.Impact == "critical" {
			out = append(out, v)
		}
	}
	return out
}

// code is a TOTP code the kernel has not seen: for now, or for the step
// after the last one used (a code is never accepted twice; ±1 step is).
func (b *browser) code(secret string) string {
	at := time.Now()
	if next := b.lastTOTP.Add(30 * time.Second); at.Before(next) {
		at = next
	}
	b.lastTOTP = at
	c, err := totp.GenerateCode(secret, at)
	require.NoError(b.t, err)
	return c
}

// TestConsoleInBrowser drives the console in Chromium through what an
// institution's admin and an operator do, checking each main page with
// axe-core and saving screenshots (.test-results/console-screenshots).
func TestConsoleInBrowser(t *testing.T) {
	exe := chromium(t)
	k := start(t, []plugin{
		{name: "courses", module: "plugins/courses"},
		{name: "telemetry", module: "plugins/telemetry"},
		{name: "gamification", module: "examples/gamification"},
		{name: "governance", module: "plugins/governance", caps: `["retention", "grants", "sign"]`},
		// A subscriber that fails every delivery: dead letters to replay.
		{name: "failing", pkg: "github.com/edulure/edulure/kernel/internal/supervisor/internal/testplugin",
			ld: "-X main.name=failing -X main.subscribe=tenancy.member.joined.v1", config: `{ fail_events = true }`},
	}, "EDULURE_EVENTS_MAX_ATTEMPTS", "1", "EDULURE_EVENTS_BACKOFF", "20ms", "EDULURE_EVENTS_POLL", "200ms",
		"EDULURE_JOBS_BACKOFF", "50ms", "EDULURE_JOBS_POLL", "100ms")
	k.institution("northwind")
	_, err := app.CreateUser(context.Background(), k.kernel.Pool, app.UserSpec{Email: "op@platform.test", Name: "Operator", Password: password, Operator: true})
	require.NoError(t, err)
	admin := k.login("admin@northwind.test", "northwind") // the API's view, beside the browser's
	_, created := k.api("POST", "/api/v1/courses", admin, map[string]any{"title": "Practical Statistics", "summary": "Numbers you can trust."})
	require.NotEmpty(t, created["id"], "%v", created)
	status, module := k.api("POST", "/api/v1/courses/"+created["id"].(string)+"/modules", admin, map[string]any{"title": "Basics"})
	require.Equal(t, 201, status, "%v", module)
	status, lesson := k.api("POST", "/api/v1/courses/"+created["id"].(string)+"/modules/"+module["id"].(string)+"/lessons", admin,
		map[string]any{"title": "Means", "body": "# Means\n\nThe average.", "estimated_minutes": 10})
	require.Equal(t, 201, status, "%v", lesson)
	b := newBrowser(t, exe, k.url)

	// The accessibility check finds what it should: an image without a text
	// alternative, a field without a label.
	b.do(chromedp.Navigate(`data:text/html,<html lang="en"><title>x</title><main><img src="x.png"><input type="text"></main></html>`))
	found := map[string]bool{}
	for _, v := range b.violations() {
		found[v.ID] = true
	}
	require.True(t, found["image-alt"] && found["label"], "axe-core found %v", found)

	// Sign in with a password, and set up an authenticator.
	b.do(chromedp.Navigate(k.url+"/console"), chromedp.WaitVisible(h1("Sign in")))
	b.accessible("sign in")
	b.shot("01-sign-in")
	b.do(chromedp.SendKeys(chromedp.ID("email"), "admin@northwind.test"), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(`//button[text()='Sign in']`), chromedp.WaitVisible(h1("Overview")))
	b.accessible("overview")
	b.open("/console/account", "Your account")
	b.accessible("account")
	b.do(chromedp.Click(`//button[text()='Set up an authenticator']`), chromedp.WaitVisible(h1("Set up an authenticator")),
		chromedp.WaitVisible(`img.qr`))
	b.accessible("authenticator enrolment")
	b.shot("02-totp-enrolment")
	secret := b.text("#totp-secret")
	b.do(chromedp.SendKeys(chromedp.ID("code"), b.code(secret)), chromedp.Click(`//button[text()='Turn on']`),
		chromedp.WaitVisible(`#recovery-codes`))
	recovery := strings.Fields(b.text("#recovery-codes"))
	require.Len(t, recovery, 10)

	// Sign out, and in again with the second factor.
	b.do(chromedp.Click(`//button[text()='Sign out']`), chromedp.WaitVisible(flash("You have signed out.")))
	b.do(chromedp.SendKeys(chromedp.ID("email"), "admin@northwind.test"), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(`//button[text()='Sign in']`), chromedp.WaitVisible(h1("Two-factor authentication")))
	b.accessible("second factor")
	b.do(chromedp.SendKeys(chromedp.ID("code"), wrongCode(t, secret)), chromedp.Click(`//button[text()='Verify']`),
		chromedp.WaitVisible(`//p[@role='alert']`), chromedp.WaitVisible(h1("Two-factor authentication")))
	b.do(chromedp.SetValue(chromedp.ID("code"), b.code(secret)), chromedp.Click(`//button[text()='Verify']`),
		chromedp.WaitVisible(h1("Overview")), chromedp.WaitVisible(`//dd[text()='on']`))
	b.shot("03-overview")

	// Sessions: this one, and the API's login; revoke the other.
	b.open("/console/account", "Your account")
	b.do(chromedp.WaitVisible(`//span[text()='this session']`), chromedp.Click(`//button[starts-with(normalize-space(), 'Revoke')]`),
		chromedp.WaitVisible(flash("The session was revoked.")))
	status, _ = k.api("GET", "/api/v1/me", admin, nil)
	require.Equal(t, 401, status, "the revoked session's token is refused")
	b.shot("04-account")

	// The rest of the checks on the API's side use a fresh token, second
	// factor included (a recovery code: the authenticator's next codes are
	// not due yet).
	admin = k.loginMFA("admin@northwind.test", "northwind", recovery[0])

	// Invite a member.
	b.open("/console/people", "People")
	b.accessible("people")
	b.do(chromedp.SendKeys(chromedp.ID("invite-email"), "grace@northwind.test"), chromedp.Click(`input[name=roles][value=instructor]`),
		chromedp.Click(`//button[text()='Send invitation']`), chromedp.WaitVisible(flash("An invitation was sent to grace@northwind.test")),
		chromedp.WaitVisible(`//table[@id='invitations']//th[text()='grace@northwind.test']`))
	b.shot("05-people")
	inv := k.waitAPI("/api/v1/tenant/invitations", admin, func(m map[string]any) bool { return m["email"] == "grace@northwind.test" })
	require.Equal(t, []any{"instructor"}, inv["roles"])

	// Plugins: disable courses, and its routes answer 404; enable it again.
	b.open("/console/plugins", "Plugins")
	b.accessible("plugins")
	b.shot("06-plugins")
	b.do(chromedp.Click(`//button[text()='Disable courses']`), chromedp.WaitVisible(flash("courses is now disabled")))
	status, body := k.api("GET", "/api/v1/courses", admin, nil)
	require.Equal(t, 404, status, "%v", body)
	b.do(chromedp.WaitNotPresent(`//nav//h2[text()='courses']`))
	b.do(chromedp.Click(`//button[text()='Enable courses']`), chromedp.WaitVisible(flash("courses is now enabled")))
	status, _ = k.api("GET", "/api/v1/courses", admin, nil)
	require.Equal(t, 200, status)

	// Settings: the API's 422 is shown next to the field.
	b.open("/console/plugins/courses/settings", "courses settings")
	b.do(chromedp.SetValue(chromedp.ID("f-config-default_pass_mark"), "150"), chromedp.Click(`//button[text()='Save settings']`),
		chromedp.WaitVisible(`#f-config-default_pass_mark-error`))
	require.Contains(t, b.text("#f-config-default_pass_mark-error"), "100")
	invalid, err := chromedp.Run(b.ctx, chromedp.AttributeValue(chromedp.ID("f-config-default_pass_mark"), "aria-invalid"))
	require.NoError(t, err)
	require.Equal(t, "true", invalid.Value)
	b.accessible("plugin settings with an error")
	b.shot("07-plugin-settings-422")
	b.do(chromedp.SetValue(chromedp.ID("f-config-default_pass_mark"), "80"), chromedp.Click(`//button[text()='Save settings']`),
		chromedp.WaitVisible(flash("The settings of courses were saved.")))
	_, body = k.api("GET", "/api/v1/tenant/plugins", admin, nil)
	for _, p := range body["items"].([]any) {
		if p := p.(map[string]any); p["name"] == "courses" {
			require.Equal(t, 80.0, p["config"].(map[string]any)["default_pass_mark"])
		}
	}

	// A secret setting: not set, refused at its field when too short, then
	// set, and never shown back.
	b.open("/console/plugins/failing/settings", "failing settings")
	b.do(chromedp.WaitVisible(`//p[@id='f-config-api_key-state' and starts-with(., 'Not set.')]`),
		chromedp.SendKeys(chromedp.ID("f-config-api_key"), "short"), chromedp.Click(`//button[text()='Save settings']`),
		chromedp.WaitVisible(`#f-config-api_key-error`))
	b.do(chromedp.SendKeys(chromedp.ID("f-config-api_key"), "a-long-enough-secret-1"), chromedp.Click(`//button[text()='Save settings']`),
		chromedp.WaitVisible(flash("The settings of failing were saved.")), chromedp.WaitVisible(`//p[@id='f-config-api_key-state' and starts-with(., 'Set')]`))
	pageHTML, err := chromedp.Run(b.ctx, chromedp.OuterHTML("html"))
	require.NoError(t, err)
	require.NotContains(t, pageHTML, "a-long-enough-secret-1", "a secret is never shown")
	value, err := chromedp.Run(b.ctx, chromedp.Value(chromedp.ID("f-config-api_key")))
	require.NoError(t, err)
	require.Empty(t, value)
	b.accessible("secret settings")

	// A plugin's screens: the courses catalogue and enrolments, and the
	// gamification example's leaderboard with its award form.
	b.do(chromedp.Navigate(k.url+"/console"), chromedp.WaitVisible(`//nav//a[contains(@href, '/courses_get_courses')]`))
	b.do(chromedp.Click(`//nav//a[contains(@href, '/courses_get_courses')]`), chromedp.WaitVisible(`//td[text()='Practical Statistics']`),
		chromedp.WaitVisible(`//tr[td[text()='Practical Statistics']]//td[text()='draft']`))
	// A row action (POST /api/v1/courses/{course_id}/publish, no body needed).
	b.do(chromedp.Click(`//tr[td[text()='Practical Statistics']]//button[starts-with(normalize-space(), 'Publish')]`),
		chromedp.WaitVisible(flash("Publish: done.")), chromedp.WaitVisible(`//tr[td[text()='Practical Statistics']]//td[text()='published']`))
	b.accessible("courses catalogue")
	b.shot("08-courses-catalogue")
	b.open("/console/apps/courses/courses_get_enrolments", "Courses: Enrolments")
	b.accessible("courses enrolments")
	b.do(chromedp.Click(`//nav//a[contains(@href, '/telemetry_get_telemetry_exports')]`), chromedp.WaitVisible(h1("Telemetry: Exports")))
	b.accessible("telemetry exports")
	_, members := k.api("GET", "/api/v1/tenant/members", admin, nil)
	learner := ""
	for _, m := range members["items"].([]any) {
		if m := m.(map[string]any); m["email"] == "learner@northwind.test" {
			learner = m["user_id"].(string)
		}
	}
	b.open("/console/apps/gamification/gamification_get_leaderboard", "Gamification: Leaderboard")
	b.do(chromedp.SendKeys(chromedp.ID("f-config-user_id"), learner), chromedp.SendKeys(chromedp.ID("f-config-points"), "5000"),
		chromedp.Click(`//button[text()='Save']`), chromedp.WaitVisible(`#f-config-points-error`))
	b.do(chromedp.SetValue(chromedp.ID("f-config-points"), "25"), chromedp.Click(`//button[text()='Save']`),
		chromedp.WaitVisible(flash("Saved.")), chromedp.WaitVisible(`//td[text()='25']`))
	b.accessible("leaderboard")
	b.shot("09-leaderboard")
	// The governance plugin's incidents: one opened from its screen's form.
	b.open("/console/apps/governance/governance_get_governance_incidents", "Governance: Incidents")
	b.do(chromedp.SendKeys(chromedp.ID("f-config-title"), "Lost laptop with exam scripts"), chromedp.Click(`//button[text()='Save']`),
		chromedp.WaitVisible(flash("Saved.")), chromedp.WaitVisible(`//td[text()='Lost laptop with exam scripts']`))
	b.accessible("governance incidents")
	b.shot("15-governance-incidents")

	// A member's roles changed, then the member removed.
	b.open("/console/people", "People")
	b.do(chromedp.Click(`//a[text()='learner@northwind.test']`), chromedp.WaitVisible(h1("learner@northwind.test")),
		chromedp.Click(`input[name=roles][value=instructor]`), chromedp.Click(`//button[text()='Save roles']`),
		chromedp.WaitVisible(flash("The roles were saved.")))
	b.accessible("member")
	_, member := k.api("GET", "/api/v1/tenant/members/"+learner, admin, nil)
	require.ElementsMatch(t, []any{"learner", "instructor"}, member["roles"])
	b.do(chromedp.Click(`//button[text()='Remove from the institution']`), chromedp.WaitVisible(flash("The member was removed")),
		chromedp.WaitNotPresent(`//a[text()='learner@northwind.test']`))
	status, _ = k.api("GET", "/api/v1/tenant/members/"+learner, admin, nil)
	require.Equal(t, 404, status)

	// Roles with the permission picker, and API keys shown once.
	b.open("/console/roles", "Roles")
	b.accessible("roles")
	b.open("/console/roles/new", "Role")
	b.do(chromedp.SendKeys(chromedp.ID("role-name"), "registrar"), chromedp.Click(`input[name=permissions][value='tenancy.member.read']`),
		chromedp.Click(`//button[text()='Save role']`), chromedp.WaitVisible(flash("The role registrar was saved.")))
	b.accessible("roles after save")
	b.open("/console/apikeys", "API keys")
	b.do(chromedp.SendKeys(chromedp.ID("key-name"), "LMS sync"), chromedp.Click(`input[name=permissions][value='tenancy.member.read']`),
		chromedp.Click(`//button[text()='Create key']`), chromedp.WaitVisible(`#new-key`))
	key := b.text("#new-key")
	require.True(t, strings.HasPrefix(key, "edk_"), key)
	status, _ = k.api("GET", "/api/v1/tenant/members", key, nil)
	require.Equal(t, 200, status, "the key shown works")
	b.accessible("API keys")

	// Dead letters: the failing subscriber's; replay one.
	dead := k.waitAPI("/api/v1/events/deliveries?status=dead", admin, func(m map[string]any) bool { return m["subscriber"] == "failing" })
	id := str(dead["id"])
	b.open("/console/deliveries", "Deliveries and dead letters")
	b.do(chromedp.WaitVisible("#delivery-" + id))
	b.accessible("dead letters")
	b.shot("10-dead-letters")
	b.do(chromedp.Click(`//tr[@id='delivery-`+id+`']//button`), chromedp.WaitVisible(flash("Delivery "+id+" will be delivered again.")))
	k.waitAPI("/api/v1/events/deliveries?status=dead", admin, func(m map[string]any) bool {
		return str(m["id"]) == id && m["attempts"] == 1.0 && m["updated_at"] != dead["updated_at"]
	})

	// Jobs: run one now, and see its run.
	b.open("/console/jobs", "Jobs")
	b.accessible("jobs")
	b.shot("11-jobs")
	b.do(chromedp.Click(`//form[@action='/console/jobs/failing/sweep/run']/button`), chromedp.WaitVisible(flash("The job was queued")))
	m := regexp.MustCompile(`run ([0-9a-f-]{36})`).FindStringSubmatch(b.text(".flash"))
	require.NotNil(t, m)
	b.do(chromedp.WaitVisible(`//table[@id='runs']//th[text()='` + m[1][:8] + `']`))
	b.accessible("job runs")

	// The institution's settings: a cool-off out of range is refused at
	// its field; a role made to need a second factor is saved.
	b.open("/console/institution", "Institution settings")
	b.do(chromedp.SetValue(chromedp.ID("i-cool"), "9999"), chromedp.Click(`//button[text()='Save settings']`),
		chromedp.WaitVisible(`#i-cool-error`))
	b.do(chromedp.SetValue(chromedp.ID("i-cool"), "72"), chromedp.Click(`input[name=mfa_required_roles][value=admin]`),
		chromedp.Click(`//button[text()='Save settings']`), chromedp.WaitVisible(flash("The institution's settings were saved.")))
	b.accessible("institution settings")
	_, tenant := k.api("GET", "/api/v1/tenant", admin, nil)
	require.Equal(t, 72.0, tenant["erasure_cool_off_hours"])
	require.Equal(t, []any{"admin"}, tenant["mfa_required_roles"])

	b.open("/console/privacy", "Personal data")
	b.accessible("personal data")

	// Events and the audit log, with the chain verified.
	b.open("/console/events", "Events")
	b.accessible("events")
	b.open("/console/audit", "Audit log")
	b.do(chromedp.Click(`//button[text()='Verify the chain']`), chromedp.WaitVisible(`#verify-result`))
	require.Contains(t, b.text("#verify-result"), "verifies")
	b.accessible("audit")
	b.shot("12-audit")

	// On a phone.
	b.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2)), chromedp.Navigate(k.url+"/console/plugins"), chromedp.WaitVisible(h1("Plugins")))
	b.accessible("plugins on a phone")
	png, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(b.shots, "13-plugins-phone.png"), png, 0o644))
	b.do(chromedp.EmulateViewport(1280, 900))

	// An operator: institutions, installed plugins, signing keys.
	b.do(chromedp.Click(`//button[text()='Sign out']`), chromedp.WaitVisible(flash("You have signed out.")))
	b.do(chromedp.SendKeys(chromedp.ID("email"), "op@platform.test"), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(`//button[text()='Sign in']`), chromedp.WaitVisible(h1("Overview")))
	b.open("/console/operator/institutions", "Institutions")
	b.do(chromedp.WaitVisible(`//th[text()='Institution northwind']`))
	b.do(chromedp.SendKeys(chromedp.ID("t-slug"), "Not A Slug"), chromedp.SendKeys(chromedp.ID("t-name"), "Southwind College"),
		chromedp.Click(`//button[text()='Create institution']`), chromedp.WaitVisible(`#t-slug-error`))
	b.accessible("institutions with an error")
	b.do(chromedp.SetValue(chromedp.ID("t-slug"), "southwind"), chromedp.Click(`//button[text()='Create institution']`),
		chromedp.WaitVisible(flash("The institution Southwind College was created.")), chromedp.WaitVisible(`//th[text()='Southwind College']`))
	b.open("/console/operator/audit", "Platform audit log")
	b.do(chromedp.Click(`//button[text()='Verify the chain']`), chromedp.WaitVisible(`#verify-result`))
	require.Contains(t, b.text("#verify-result"), "verifies")
	b.accessible("platform audit")
	b.open("/console/operator/plugins", "Installed plugins")
	b.do(chromedp.WaitVisible(`//th[text()='courses']`))
	b.accessible("installed plugins")
	b.shot("14-operator-plugins")
	b.open("/console/operator/keys", "Signing keys")
	b.do(chromedp.Click(`//button[text()='Rotate the signing key']`), chromedp.WaitVisible(flash("now signs")))
	b.do(chromedp.WaitVisible(`//td[text()='verifying']`))
	b.accessible("signing keys")
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return strconv.FormatInt(int64(x), 10)
	}
	return ""
}
