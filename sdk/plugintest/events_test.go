package plugintest_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// countNotes counts an institution's notes behind row-level security's back.
func countNotes(t *testing.T, h *plugintest.Harness, tenant string) int {
	t.Helper()
	var n int
	require.NoError(t, h.DB().QueryRow(context.Background(), "SELECT count(*) FROM plugin_notes.notes WHERE tenant_id = $1", tenant).Scan(&n))
	return n
}

func TestDeliverRunsTheSubscription(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	ev := plugintest.Event{
		Type: eventCourseCreated, TenantID: tenant, Actor: "user:" + plugintest.NewID(), RequestID: "req-7",
		Data: map[string]any{"course_id": plugintest.NewID(), "title": "Algebra"},
	}
	require.NoError(t, h.Deliver(t, ev))

	var author, body string
	require.NoError(t, h.DB().QueryRow(context.Background(), "SELECT author, body FROM plugin_notes.notes WHERE tenant_id = $1", tenant).Scan(&author, &body))
	require.Equal(t, ev.Actor, author)
	require.Equal(t, "welcome to Algebra", body)

	pub := h.Published(t, tenant)
	require.Len(t, pub, 1)
	require.Equal(t, eventNoteCreated, pub[0].Type)
	require.Equal(t, tenant, pub[0].TenantID)
	require.Equal(t, ev.Actor, pub[0].Actor, "Event.Publish keeps the cause's actor")
	require.Equal(t, "req-7", pub[0].RequestID, "and its request ID")
	require.Equal(t, "notes", pub[0].Source)
	require.NotEmpty(t, pub[0].ID)
	require.WithinDuration(t, time.Now(), pub[0].OccurredAt, time.Minute)
	var data struct {
		ID   int64
		Body string
	}
	require.NoError(t, pub[0].Decode(&data))
	require.Equal(t, "welcome to Algebra", data.Body)

	require.Empty(t, h.Published(t, other))
	require.Zero(t, countNotes(t, h, other))
	require.Len(t, h.Published(t, ""), 1)

	// The published event, as the kernel would deliver it onwards.
	onward := pub[0].Event()
	require.Equal(t, pub[0].ID, onward.ID)
	require.Equal(t, "notes", onward.Source)
	require.Equal(t, tenant, onward.TenantID)
}

// A redelivery (same ID) changes nothing: Event.Tx records the ID in the
// inbox with the handler's changes.
func TestDeliverTwiceAppliesOnce(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: eventCourseCreated, TenantID: tenant, Data: `{"title":"Algebra"}`}
	require.NoError(t, h.Deliver(t, ev))
	ev.Attempt = 2
	require.NoError(t, h.Deliver(t, ev))
	require.Equal(t, 1, countNotes(t, h, tenant))
	require.Len(t, h.Published(t, tenant), 1)

	var inbox int
	require.NoError(t, h.DB().QueryRow(context.Background(), "SELECT count(*) FROM plugin_notes.edulure_inbox WHERE event_id = $1", ev.ID).Scan(&inbox))
	require.Equal(t, 1, inbox)

	ev.ID = "" // another event: a new ID
	require.NoError(t, h.Deliver(t, ev))
	require.Equal(t, 2, countNotes(t, h, tenant))
	require.Len(t, h.Published(t, tenant), 2)
}

func TestDeliverReturnsTheHandlersError(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	id := plugintest.NewEventID()
	err := h.Deliver(t, plugintest.Event{ID: id, Type: eventCourseCreated, TenantID: tenant, Data: map[string]any{"title": ""}})
	require.ErrorContains(t, err, "event "+id+": no title")
	err = h.Deliver(t, plugintest.Event{Type: eventCourseCreated, TenantID: tenant, Data: map[string]any{"title": 5}})
	require.ErrorContains(t, err, "decoding courses.course.created.v1 event")
	err = h.Deliver(t, plugintest.Event{Type: eventCourseCreated, TenantID: tenant, Data: map[string]any{"title": "panic"}})
	require.ErrorContains(t, err, "handler panicked: the event handler broke")
	require.Zero(t, countNotes(t, h, tenant))
	require.Empty(t, h.Published(t, tenant))

	// A failed event is not in the inbox: its redelivery is handled.
	err = h.Deliver(t, plugintest.Event{ID: id, Type: eventCourseCreated, TenantID: tenant, Data: map[string]any{"title": "fixed"}, Attempt: 2})
	require.NoError(t, err)
	require.Equal(t, 1, countNotes(t, h, tenant))
}

func TestDeliverSkipsAnInstitutionWithThePluginOff(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	h.SetEnabled(tenant, false)
	err := h.Deliver(t, plugintest.Event{Type: eventCourseCreated, TenantID: tenant, Data: map[string]any{"title": "x"}})
	require.ErrorIs(t, err, plugintest.ErrSkipped)
	require.Zero(t, countNotes(t, h, tenant))
}

// Request.Publish writes to the outbox in the request's transaction: the
// event is there when it commits and absent when it rolls back.
func TestPublishedHoldsCommittedEventsOnly(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")

	res := h.Do(teacher, "POST", "/api/v1/notes", map[string]string{"body": "rollback"})
	require.Equal(t, http.StatusConflict, res.Status, res)
	require.Empty(t, h.Published(t, tenant))
	require.Zero(t, countNotes(t, h, tenant))

	res = h.DoRequest(plugintest.Request{Principal: teacher, Method: "POST", Path: "/api/v1/notes", Body: map[string]string{"body": "kept"}, RequestID: "req-1"})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var created struct{ ID int64 }
	res.JSON(t, &created)
	pub := h.Published(t, tenant)
	require.Len(t, pub, 1)
	require.Equal(t, "user:"+teacher.UserID, pub[0].Actor)
	require.Equal(t, "req-1", pub[0].RequestID)
	require.JSONEq(t, `{"id":`+jsonNumber(created.ID)+`,"body":"kept"}`, string(pub[0].Data))

	h.Do(teacher, "POST", "/api/v1/notes", map[string]string{"body": "second"})
	pub = h.Published(t, tenant)
	require.Len(t, pub, 2)
	require.Contains(t, string(pub[1].Data), "second", "oldest first")
}

// The harness's DB checks events against the manifest, as a served
// plugin's does.
func TestPublishChecksTheManifest(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	ctx := context.Background()
	publish := func(typ string, data any) error {
		return h.InTenant(tenant, func(tx pgx.Tx) error {
			return h.PluginDB().Publish(ctx, tx, sdk.Outgoing{Type: typ, TenantID: tenant, Data: data})
		})
	}
	require.ErrorContains(t, publish("notes.note.deleted.v1", map[string]any{}), "does not declare it in Publishes")
	require.ErrorContains(t, publish(eventNoteCreated, map[string]any{"id": 1, "body": ""}), "does not match the schema")
	require.ErrorContains(t, publish(eventNoteCreated, map[string]any{"id": "one", "body": "x"}), "does not match the schema")
	require.Empty(t, h.Published(t, tenant))

	require.NoError(t, publish(eventNoteCreated, map[string]any{"id": 1, "body": "x"}))
	pub := h.Published(t, tenant)
	require.Len(t, pub, 1)
	require.Equal(t, "plugin:notes", pub[0].Actor, "the plugin, when the publisher names no one")

	// The outbox is tenant-scoped: no publishing for another institution.
	err := h.InTenant(tenant, func(tx pgx.Tx) error {
		return h.PluginDB().Publish(ctx, tx, sdk.Outgoing{Type: eventNoteCreated, TenantID: plugintest.NewTenant(), Data: map[string]any{"id": 1, "body": "x"}})
	})
	requirePgCode(t, err, "42501", "row-level security")
}

func TestRunJob(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	admin := plugintest.User(tenant, "admin")

	out, err := h.RunJob(t, "archive", plugintest.JobRun{TenantID: tenant, Principal: admin, Args: map[string]any{"body": "old"}})
	require.NoError(t, err)
	require.Regexp(t, `^archived note \d+ \(manual, attempt 1\)$`, out)
	pub := h.Published(t, tenant)
	require.Len(t, pub, 1)
	require.Equal(t, "user:"+admin.UserID, pub[0].Actor, "a manual run publishes as who asked for it")

	out, err = h.RunJob(t, "count", plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "1 notes", out)
	out, err = h.RunJob(t, "count", plugintest.JobRun{TenantID: plugintest.NewTenant(), Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, "0 notes", out, "a run sees its own institution's rows only")

	out, err = h.RunJob(t, "sweep", plugintest.JobRun{Trigger: "schedule"})
	require.NoError(t, err)
	require.Equal(t, `tenant "", 0 notes visible`, out)
}

func TestRunJobErrors(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()

	// An sdk error keeps its kind.
	_, err := h.RunJob(t, "archive", plugintest.JobRun{TenantID: tenant})
	require.ErrorIs(t, err, sdk.ErrInvalid)
	var se *sdk.Error
	require.ErrorAs(t, err, &se)
	require.Equal(t, "body", se.Fields[0].Field)

	// Any other error is internal and keeps its message for the operator;
	// what the run published before failing is rolled back with it.
	_, err = h.RunJob(t, "archive", plugintest.JobRun{TenantID: tenant, Args: `{"body":"x","fail":true}`, Attempt: 3})
	require.ErrorContains(t, err, "archive: failing after publishing, as asked")
	var internal *sdk.Error
	require.False(t, errors.As(err, &internal), "an internal error is not an *sdk.Error")
	require.Empty(t, h.Published(t, tenant))
	require.Zero(t, countNotes(t, h, tenant))

	// The job's Timeout is the attempt's deadline.
	_, err = h.DB().Exec(context.Background(), "INSERT INTO plugin_notes.notes (tenant_id, author, body) VALUES ($1, 'x', 'slow')", tenant)
	require.NoError(t, err)
	start := time.Now()
	_, err = h.RunJob(t, "count", plugintest.JobRun{TenantID: tenant})
	require.ErrorContains(t, err, "timed out")
	require.Less(t, time.Since(start), 10*time.Second)

	// Not run where the plugin is off.
	h.SetEnabled(tenant, false)
	_, err = h.RunJob(t, "count", plugintest.JobRun{TenantID: tenant})
	require.ErrorIs(t, err, plugintest.ErrSkipped)
}

// A manual run gets who asked; a run triggered by an event gets the event.
func TestRunJobTriggers(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	key := plugintest.APIKey(tenant)
	out, err := h.RunJob(t, "archive", plugintest.JobRun{
		TenantID: tenant, Trigger: "manual", Principal: key, Args: map[string]any{"body": "by key"}, Attempt: 2,
	})
	require.NoError(t, err)
	require.Contains(t, out, "(manual, attempt 2)")
	require.Equal(t, "apikey:"+key.APIKeyID, h.Published(t, tenant)[0].Actor)

	out, err = h.RunJob(t, "count", plugintest.JobRun{TenantID: tenant, Event: &plugintest.Event{Type: eventCourseCreated, TenantID: tenant, RequestID: "req-3"}})
	require.NoError(t, err)
	require.Equal(t, "1 notes (event after courses.course.created.v1 of req-3)", out)
}

// A Batch subscription takes a batch in one transaction, deduplicated
// against the inbox in one statement: a redelivered batch, or the part of
// one handled before, changes nothing; a bad event fails alone.
func TestDeliverBatch(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, newNotes())
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	lesson := func(tenant, title string) plugintest.Event {
		return plugintest.Event{ID: plugintest.NewEventID(), Type: eventLessonCompleted, TenantID: tenant, Data: map[string]any{"title": title}}
	}
	a, b, c, d := lesson(tenant, "one"), lesson(tenant, "two"), lesson(other, "three"), lesson(tenant, "four")
	require.Equal(t, []error{nil, nil, nil}, h.DeliverBatch(t, a, b, c))
	require.Equal(t, 2, countNotes(t, h, tenant))
	require.Equal(t, 1, countNotes(t, h, other), "each institution's events in a batch of their own")

	require.Equal(t, []error{nil, nil, nil, nil}, h.DeliverBatch(t, a, b, c, d), "redelivered with one new")
	require.Equal(t, 3, countNotes(t, h, tenant), "only the new one applied")
	require.Equal(t, 1, countNotes(t, h, other))

	bad, e := lesson(tenant, "fail"), lesson(tenant, "five")
	errs := h.DeliverBatch(t, bad, e)
	require.ErrorContains(t, errs[0], `lesson "fail" fails`)
	require.NoError(t, errs[1], "the batch is retried event by event: the good one is applied")
	require.Equal(t, 4, countNotes(t, h, tenant))

	// One at a time works too (a batch of one).
	require.NoError(t, h.Deliver(t, lesson(tenant, "six")))
	require.Equal(t, 5, countNotes(t, h, tenant))
}
