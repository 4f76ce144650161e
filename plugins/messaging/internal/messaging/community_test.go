package messaging_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/messaging/internal/messaging"
)

// cohortWorld is an institution with a course, a cohort of two enrolled
// learners (through the courses plugin's events), an outsider, and an
// instructor who moderates the cohort's space.
type cohortWorld struct {
	tenant                          string
	admin, teacher, l1, l2, outside sdk.Principal
	course, cohort                  string
	courseSpace, cohortSpace        string
}

func (e *env) cohortWorld() cohortWorld {
	e.t.Helper()
	w := cohortWorld{tenant: plugintest.NewTenant(), course: plugintest.NewID(), cohort: plugintest.NewID()}
	w.admin = e.person(w.tenant, "admin@uni.test", "Ada Admin", "admin")
	w.teacher = e.person(w.tenant, "teacher@uni.test", "Tom Teacher", "instructor")
	w.l1 = e.person(w.tenant, "l1@uni.test", "Lou One", "learner")
	w.l2 = e.person(w.tenant, "l2@uni.test", "Lee Two", "learner")
	w.outside = e.person(w.tenant, "out@uni.test", "Otto Outside", "learner")
	e.deliver(plugintest.Event{Type: messaging.EventCoursePublished, TenantID: w.tenant, Source: "courses", Data: map[string]any{"course_id": w.course, "title": "Statistics"}})
	for _, l := range []sdk.Principal{w.l1, w.l2} {
		e.deliver(plugintest.Event{Type: messaging.EventEnrolmentCreated, TenantID: w.tenant, Source: "courses", Data: map[string]any{
			"enrolment_id": plugintest.NewID(), "course_id": w.course, "cohort_id": w.cohort, "user_id": l.UserID, "status": "active", "source": "self"}})
	}
	var page struct {
		Items []map[string]any `json:"items"`
	}
	e.do(w.admin, "GET", "/api/v1/spaces", nil, 200).JSON(e.t, &page)
	for _, s := range page.Items {
		switch s["kind"] {
		case "course":
			w.courseSpace = s["id"].(string)
		case "cohort":
			w.cohortSpace = s["id"].(string)
		}
	}
	require.NotEmpty(e.t, w.cohortSpace)
	e.do(w.admin, "PUT", "/api/v1/spaces/"+w.cohortSpace+"/moderators/"+w.teacher.UserID, nil, 200)
	return w
}

func id(t *testing.T, r *plugintest.Result) string {
	t.Helper()
	var v map[string]any
	r.JSON(t, &v)
	return v["id"].(string)
}

// Membership follows enrolments; a learner outside a cohort cannot read
// its space; another institution sees nothing.
func TestSpacesFollowEnrolments(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	e.do(w.l1, "GET", "/api/v1/spaces/"+w.cohortSpace, nil, 200)
	require.Equal(t, 404, e.h.Do(w.outside, "GET", "/api/v1/spaces/"+w.cohortSpace, nil).Status)
	require.Equal(t, 404, e.h.Do(w.outside, "GET", "/api/v1/spaces/"+w.cohortSpace+"/posts", nil).Status)
	require.Equal(t, 404, e.h.Do(w.outside, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "hi"}).Status)
	other := plugintest.NewTenant()
	require.Equal(t, 404, e.h.Do(plugintest.User(other, "admin"), "GET", "/api/v1/spaces/"+w.cohortSpace, nil).Status)
	var sp map[string]any
	e.do(w.l1, "GET", "/api/v1/spaces/"+w.courseSpace, nil, 200).JSON(t, &sp)
	require.Equal(t, "Statistics", sp["title"])

	// A withdrawal takes the learner out.
	e.deliver(plugintest.Event{Type: messaging.EventEnrolmentWithdrawn, TenantID: w.tenant, Source: "courses", Data: map[string]any{
		"enrolment_id": plugintest.NewID(), "course_id": w.course, "cohort_id": w.cohort, "user_id": w.l2.UserID, "status": "withdrawn"}})
	require.Equal(t, 404, e.h.Do(w.l2, "GET", "/api/v1/spaces/"+w.cohortSpace, nil).Status)
}

// An announcement to a cohort reaches each member once per channel, the
// author aside, even when its event is delivered twice.
func TestAnnouncementToCohort(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	require.Equal(t, 403, e.h.Do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "x", "kind": "announcement"}).Status)
	e.do(w.teacher, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "<p>Quiz on <b>Friday</b></p><img src=x onerror=alert(1)>", "kind": "announcement"}, 201)
	var ann plugintest.PublishedEvent
	for _, p := range e.h.Published(t, w.tenant) {
		if p.Type == messaging.EventAnnouncementPublished {
			ann = p
		}
	}
	require.NotEmpty(t, ann.Type)
	ev := ann.Event()
	e.deliver(ev)
	e.deliver(ev)
	e.fanout(w.tenant)
	for _, who := range []string{"l1@uni.test", "l2@uni.test"} {
		msgs := e.waitMail(who, 1)
		require.Len(t, msgs, 1, who)
		require.Contains(t, msgs[0].Subject, "Quiz on Friday")
		require.NotContains(t, msgs[0].HTML, "onerror")
		require.Contains(t, msgs[0].HTML, "<b>Friday</b>", "the post's rich text, sanitised")
		require.Contains(t, msgs[0].Text, "Quiz on Friday")
	}
	require.Empty(t, e.mail.To("out@uni.test"))
	require.Empty(t, e.mail.To("teacher@uni.test"))
	require.Len(t, e.inbox(w.l1), 1)
	require.Empty(t, e.inbox(w.outside))
	require.Equal(t, "nothing due", e.fanout(w.tenant))
}

// Posts are sanitised; comments notify the post's author, replies the
// comment's; mentions notify the mentioned; reactions are one per person
// and emoji; polls count votes.
func TestThreadsReactionsPollsMentions(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	r := e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{
		"body": `<p onclick="x()">Hello <a href="javascript:alert(1)">there</a> <strong>all</strong></p>`,
		"poll": map[string]any{"question": "Meet when?", "options": []string{"Monday", "Tuesday"}},
	}, 201)
	var post map[string]any
	r.JSON(t, &post)
	postID := post["id"].(string)
	require.NotContains(t, post["body"], "onclick")
	require.NotContains(t, post["body"], "javascript")
	require.Contains(t, post["body"], "<strong>all</strong>")

	c := id(t, e.do(w.l2, "POST", "/api/v1/posts/"+postID+"/comments", map[string]any{"body": "Monday works", "format": "text"}, 201))
	e.do(w.teacher, "POST", "/api/v1/posts/"+postID+"/comments", map[string]any{"body": "Agreed", "parent_id": c, "mentions": []string{w.l1.UserID}}, 201)
	require.Equal(t, 422, e.h.Do(w.l2, "POST", "/api/v1/posts/"+postID+"/comments", map[string]any{"body": "hey", "mentions": []string{w.outside.UserID}}).Status,
		"one mentions members of the space only")
	kinds := map[string]int{}
	for _, it := range e.inbox(w.l1) {
		kinds[it["kind"].(string)]++
	}
	require.Equal(t, 1, kinds["messaging.mention"], "%v", kinds)
	require.GreaterOrEqual(t, kinds["messaging.reply"]+kinds["messaging.comment"], 1, "%v", kinds)
	l2kinds := map[string]int{}
	for _, it := range e.inbox(w.l2) {
		l2kinds[it["kind"].(string)]++
	}
	require.NotZero(t, len(l2kinds), "the reply notified the comment's author")

	e.do(w.l2, "PUT", "/api/v1/posts/"+postID+"/reactions/👍", nil, 200)
	e.do(w.l2, "PUT", "/api/v1/posts/"+postID+"/reactions/👍", nil, 200)
	e.do(w.teacher, "PUT", "/api/v1/posts/"+postID+"/reactions/👍", nil, 200)
	require.Equal(t, 422, e.h.Do(w.l2, "PUT", "/api/v1/posts/"+postID+"/reactions/notanemoji", nil).Status)
	e.do(w.l1, "GET", "/api/v1/posts/"+postID, nil, 200).JSON(t, &post)
	reactions := post["reactions"].([]any)
	require.Len(t, reactions, 1)
	require.EqualValues(t, 2, reactions[0].(map[string]any)["count"])
	// The post and each new reaction are published (for telemetry); the
	// same reaction again is not.
	var created []messaging.PostCreated
	var reacted []messaging.ReactionAdded
	for _, ev := range e.h.Published(t, w.tenant) {
		switch ev.Type {
		case messaging.EventPostCreated:
			var d messaging.PostCreated
			require.NoError(t, ev.Decode(&d))
			created = append(created, d)
		case messaging.EventReactionAdded:
			var d messaging.ReactionAdded
			require.NoError(t, ev.Decode(&d))
			reacted = append(reacted, d)
		}
	}
	require.Len(t, created, 1)
	require.Equal(t, messaging.PostCreated{PostID: postID, SpaceID: w.cohortSpace, SpaceKind: "cohort", CourseID: w.course, CohortID: w.cohort,
		AuthorID: w.l1.UserID, Kind: "post", CreatedAt: created[0].CreatedAt}, created[0])
	require.Len(t, reacted, 2)
	require.Equal(t, w.l2.UserID, reacted[0].UserID)
	require.Equal(t, "👍", reacted[0].Emoji)
	require.Equal(t, postID, reacted[1].TargetID)
	require.Equal(t, w.cohort, reacted[1].CohortID)

	poll := post["poll"].(map[string]any)
	opt := poll["options"].([]any)[0].(map[string]any)["id"].(string)
	e.do(w.l1, "POST", "/api/v1/posts/"+postID+"/votes", map[string]any{"options": []string{opt}}, 200)
	var res map[string]any
	e.do(w.l2, "POST", "/api/v1/posts/"+postID+"/votes", map[string]any{"options": []string{opt}}, 200).JSON(t, &res)
	require.EqualValues(t, 2, res["voters"])
	require.Equal(t, 422, e.h.Do(w.l2, "POST", "/api/v1/posts/"+postID+"/votes", map[string]any{"options": []string{"zzz"}}).Status)
}

// Moderation: reports, hide (audited, seen by the author only, out of
// the ranked feed), lock, pin; learners cannot moderate.
func TestModeration(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	postID := id(t, e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "Buy cheap watches"}, 201))
	other := id(t, e.do(w.l2, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "A real question"}, 201))
	e.do(w.l2, "POST", "/api/v1/posts/"+postID+"/reports", map[string]any{"reason": "spam"}, 201)
	require.Equal(t, 409, e.h.Do(w.l2, "POST", "/api/v1/posts/"+postID+"/reports", map[string]any{"reason": "spam"}).Status)
	require.Equal(t, 409, e.h.Do(w.l1, "POST", "/api/v1/posts/"+postID+"/reports", map[string]any{"reason": "me"}).Status)

	feed := func(p sdk.Principal, sort string) []string {
		var page struct {
			Items []map[string]any `json:"items"`
		}
		e.do(p, "GET", "/api/v1/spaces/"+w.cohortSpace+"/posts?sort="+sort, nil, 200).JSON(t, &page)
		var ids []string
		for _, it := range page.Items {
			ids = append(ids, it["id"].(string))
		}
		return ids
	}
	require.Equal(t, []string{other}, feed(w.l2, "ranked"), "reported content is left out of the ranked feed")
	require.ElementsMatch(t, []string{postID, other}, feed(w.l2, "newest"))

	var reports struct {
		Items []map[string]any `json:"items"`
	}
	require.Equal(t, 403, e.h.Do(w.l1, "GET", "/api/v1/spaces/"+w.cohortSpace+"/reports", nil).Status)
	e.do(w.teacher, "GET", "/api/v1/spaces/"+w.cohortSpace+"/reports", nil, 200).JSON(t, &reports)
	require.Len(t, reports.Items, 1)

	require.Equal(t, 403, e.h.Do(w.l2, "POST", "/api/v1/posts/"+postID+"/moderation", map[string]any{"action": "hide"}).Status)
	e.do(w.teacher, "POST", "/api/v1/posts/"+postID+"/moderation", map[string]any{"action": "hide", "reason": "spam"}, 200)
	require.Equal(t, 404, e.h.Do(w.l2, "GET", "/api/v1/posts/"+postID, nil).Status)
	var mine map[string]any
	e.do(w.l1, "GET", "/api/v1/posts/"+postID, nil, 200).JSON(t, &mine)
	require.Equal(t, true, mine["hidden"])
	require.Equal(t, "spam", mine["hidden_reason"])
	require.Equal(t, []string{other}, feed(w.l2, "newest"))

	e.do(w.teacher, "POST", "/api/v1/posts/"+other+"/moderation", map[string]any{"action": "lock"}, 200)
	r := e.h.Do(w.l1, "POST", "/api/v1/posts/"+other+"/comments", map[string]any{"body": "late"})
	require.Equal(t, 409, r.Status, r)
	require.Equal(t, "thread_locked", r.Problem().Code)
	e.do(w.teacher, "POST", "/api/v1/posts/"+other+"/moderation", map[string]any{"action": "pin"}, 200)

	var actions []string
	for _, a := range e.h.AuditEntries() {
		actions = append(actions, a.Action)
	}
	require.Subset(t, actions, []string{"messaging.post.hide", "messaging.post.lock", "messaging.post.pin"})
}

// Bursts are refused with 429, per person and space.
func TestBurstLimit(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	e.h.SetTenantConfig(w.tenant, []byte(`{"post_burst": 2}`))
	for i := range 2 {
		e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": fmt.Sprintf("post %d", i)}, 201)
	}
	r := e.h.Do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "one more"})
	require.Equal(t, 429, r.Status, r)
	require.Equal(t, "burst_limit", r.Problem().Code)
	e.do(w.l2, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "someone else"}, 201)
	e.advance(2 * 60e9)
	e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "later"}, 201)
}

// The feed's pages neither repeat nor skip a post while new ones arrive.
func TestFeedPaginationStable(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	e.h.SetTenantConfig(w.tenant, []byte(`{"post_burst": 1000}`))
	for i := range 5 {
		e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": fmt.Sprintf("p%d", i)}, 201)
		e.advance(1e9)
	}
	for n, sort := range []string{"newest", "ranked"} {
		want := 5 + n // the post the newest pass added
		var seen []string
		cursor := ""
		for page := 0; ; page++ {
			var pg struct {
				Items      []map[string]any `json:"items"`
				NextCursor string           `json:"next_cursor"`
			}
			e.do(w.l2, "GET", "/api/v1/spaces/"+w.cohortSpace+"/posts?limit=2&sort="+sort+"&cursor="+cursor, nil, 200).JSON(t, &pg)
			for _, it := range pg.Items {
				seen = append(seen, it["body_text"].(string))
			}
			if page == 0 { // a new post arrives between pages
				e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "new " + sort}, 201)
			}
			if pg.NextCursor == "" {
				break
			}
			cursor = pg.NextCursor
		}
		require.Len(t, seen, want, "%s: %v", sort, seen)
		uniq := map[string]bool{}
		for _, s := range seen {
			uniq[s] = true
		}
		require.Len(t, uniq, want, sort)
	}
	require.Equal(t, 422, e.h.Do(w.l2, "GET", "/api/v1/spaces/"+w.cohortSpace+"/posts?cursor=bm9wZQ", nil).Status)
}

// The inbox streams as Server-Sent Events, and resumes after Last-Event-ID.
func TestInboxStream(t *testing.T) {
	e := setup(t)
	tenant := plugintest.NewTenant()
	learner := e.person(tenant, "s@example.test", "Sam", "learner")
	e.deliver(graded(tenant, learner.UserID, 10))
	s := e.h.Stream(learner, "GET", "/api/v1/notifications/stream")
	defer s.Close()
	require.Equal(t, 200, s.Status, s)
	e.deliver(graded(tenant, learner.UserID, 20))
	ev, ok := s.NextEvent()
	require.True(t, ok, s.String())
	require.Equal(t, "notification", ev.Event)
	require.Equal(t, "2", ev.ID)
	require.Contains(t, ev.Data, "20%")
	s.Close()

	// Reconnecting with Last-Event-ID 0 replays both, in order.
	s2 := e.h.StreamRequest(plugintest.Request{Principal: learner, Method: "GET", Path: "/api/v1/notifications/stream",
		Header: http.Header{"Last-Event-Id": []string{"0"}}})
	defer s2.Close()
	for _, want := range []string{"1", "2"} {
		ev, ok := s2.NextEvent()
		require.True(t, ok)
		require.Equal(t, want, ev.ID)
	}
	bad := e.h.StreamRequest(plugintest.Request{Principal: learner, Method: "GET", Path: "/api/v1/notifications/stream",
		Header: http.Header{"Last-Event-Id": []string{"nope"}}})
	require.Equal(t, 422, bad.Status)
}

// A person's data is exported and erased: their notifications and
// settings go, their posts stay under a pseudonym without their text.
func TestPersonalData(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	postID := id(t, e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "My secret diary entry"}, 201))
	e.do(w.l2, "POST", "/api/v1/posts/"+postID+"/comments", map[string]any{"body": "Nice"}, 201)
	e.do(w.l1, "PUT", "/api/v1/notifications/preferences", map[string]any{"time_zone": "Europe/Paris"}, 200)
	e.deliver(plugintest.Event{Type: messaging.EventPasswordReset, Data: map[string]any{
		"user_id": w.l1.UserID, "email": "l1@uni.test", "display_name": "Lou One", "token": "prt_z", "expires_at": "2026-03-03T10:00:00Z"}})

	ex := e.h.ExportPersonalData(t, w.tenant, w.l1.UserID)
	require.Len(t, ex.Rows("people"), 1)
	require.Equal(t, "l1@uni.test", ex.Rows("people")[0]["email"])
	require.Len(t, ex.Rows("posts"), 1)
	require.NotEmpty(t, ex.Rows("notifications"), "the comment notified them")
	require.Len(t, ex.Rows("platform_mail"), 1)
	require.True(t, strings.Contains(ex.Text(), "My secret diary entry"))

	counts := e.h.ErasePersonalData(t, w.tenant, w.l1.UserID)
	require.NotZero(t, counts.Total())
	e.h.RequireNoTrace(t, "My secret diary entry", "l1@uni.test", "Lou One")
	var post map[string]any
	e.do(w.l2, "GET", "/api/v1/posts/"+postID, nil, 200).JSON(t, &post)
	require.NotEqual(t, w.l1.UserID, post["author_id"])
	require.Zero(t, e.h.ErasePersonalData(t, w.tenant, w.l1.UserID).Total(), "idempotent")
	require.True(t, e.h.ExportPersonalData(t, w.tenant, w.l1.UserID).Empty() || len(e.h.ExportPersonalData(t, w.tenant, w.l1.UserID).Rows("posts")) == 0)

	// An institution leaving: nothing of it stays.
	e.h.EraseTenant(t, w.tenant)
	e.h.RequireNoTrace(t, "teacher@uni.test")
}

// Attachments: a signed upload, named in a post; readable by members of
// the space through a signed URL; another's upload, a missing one or one
// too large is refused.
func TestAttachments(t *testing.T) {
	e := setup(t)
	w := e.cohortWorld()
	e.h.SetTenantConfig(w.tenant, []byte(`{"attachment_max_bytes": 20}`))
	var up map[string]any
	e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/attachments", map[string]any{"filename": "notes.txt", "content_type": "text/plain"}, 201).JSON(t, &up)
	require.Equal(t, 201, e.h.DoSigned("PUT", up["upload_url"].(string), "text/plain", strings.NewReader("hello notes")).Status)
	var big map[string]any
	e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/attachments", map[string]any{"filename": "big.txt", "content_type": "text/plain"}, 201).JSON(t, &big)
	require.Equal(t, 201, e.h.DoSigned("PUT", big["upload_url"].(string), "text/plain", strings.NewReader(strings.Repeat("x", 64))).Status)
	var missing map[string]any
	e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/attachments", map[string]any{"filename": "m.txt", "content_type": "text/plain"}, 201).JSON(t, &missing)

	r := e.h.Do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "big", "attachments": []string{big["id"].(string)}})
	require.Equal(t, 422, r.Status, r)
	require.Equal(t, "attachment_too_large", r.Problem().Code)
	r = e.h.Do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "missing", "attachments": []string{missing["id"].(string)}})
	require.Equal(t, 422, r.Status, r)
	require.Equal(t, 422, e.h.Do(w.l2, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "not mine", "attachments": []string{up["id"].(string)}}).Status)

	var post map[string]any
	e.do(w.l1, "POST", "/api/v1/spaces/"+w.cohortSpace+"/posts", map[string]any{"body": "see notes", "attachments": []string{up["id"].(string)}}, 201).JSON(t, &post)
	atts := post["attachments"].([]any)
	require.Len(t, atts, 1)
	require.EqualValues(t, 11, atts[0].(map[string]any)["size_bytes"])
	var dl map[string]any
	e.do(w.l2, "GET", "/api/v1/attachments/"+up["id"].(string)+"/download", nil, 200).JSON(t, &dl)
	res := e.h.DoSigned("GET", dl["url"].(string), "", nil)
	require.Equal(t, 200, res.Status)
	require.Equal(t, "hello notes", string(res.Body))
	require.Equal(t, 404, e.h.Do(w.outside, "GET", "/api/v1/attachments/"+up["id"].(string)+"/download", nil).Status)

	// The uploader's erasure deletes the file.
	counts := e.h.ErasePersonalData(t, w.tenant, w.l1.UserID)
	require.NotZero(t, counts.Of("attachments").Objects)
}
