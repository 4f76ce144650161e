package plugintest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

func TestMain(m *testing.M) {
	if os.Getenv("PLUGINTEST_HELPER") == "watchdog" { // see TestWatchdogRemovesClusterWithoutMain
		os.Exit(m.Run())
	}
	os.Exit(plugintest.Main(m))
}

// notes is the plugin these tests run: a tenant-scoped table and routes
// that exercise what the harness does.
type notes struct {
	env       *sdk.Env
	cleanedUp *atomic.Bool
}

var _ sdk.Plugin = (*notes)(nil)

func newNotes() *notes { return &notes{cleanedUp: &atomic.Bool{}} }

var notesMigrations = fstest.MapFS{
	"0001_notes.up.sql": {Data: []byte(`
		CREATE TABLE notes (
			id        bigserial PRIMARY KEY,
			tenant_id uuid NOT NULL,
			author    text NOT NULL,
			body      text NOT NULL
		);
		CREATE TABLE note_kinds (name text PRIMARY KEY); -- not tenant-scoped
		INSERT INTO note_kinds VALUES ('plain');`)},
}

func (n *notes) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name:    "notes",
		Version: "0.1.0",
		Permissions: []sdk.Permission{
			{Name: "notes.note.create", DefaultRoles: []string{"admin", "instructor"}},
			{Name: "notes.note.read", DefaultRoles: []string{"admin", "instructor", "learner"}},
		},
		Routes: []sdk.Route{
			{Method: "POST", Path: "/api/v1/notes", Permission: "notes.note.create", Handler: n.create},
			{Method: "GET", Path: "/api/v1/notes", Permission: "notes.note.read", Handler: n.list},
			{Method: "GET", Path: "/api/v1/notes/{id}", Permission: "notes.note.read", Handler: n.get},
			{Method: "GET", Path: "/api/v1/notes-panic", Permission: "notes.note.read", Handler: n.panic},
			{Method: "GET", Path: "/api/v1/notes-echo/{anything}", Permission: "notes.note.read", Query: echoQuery{}, Handler: n.echo},
			{Method: "GET", Path: "/api/v1/notes-errors/{kind}", Public: true, Handler: n.fail},
			{Method: "GET", Path: "/api/v1/notes-status", Public: true, Handler: n.echo},
		},
		Publishes: []sdk.EventType{{Type: eventNoteCreated, Description: "A note was written.", Schema: noteCreatedSchema}},
		Subscribes: []sdk.Subscription{
			{Type: eventCourseCreated, Handler: n.courseCreated},
			{Type: eventLessonCompleted, Batch: n.lessonsCompleted, CatchUp: sdk.CatchUpRetained()},
		},
		Jobs: []sdk.Job{
			// On demand only: no schedule, no event.
			{Name: "archive", Description: "Write a note from the run's arguments.", PerTenant: true, Handler: n.archive},
			{Name: "count", Description: "Count the institution's notes.", Schedule: "@every 1h", PerTenant: true, Timeout: time.Second, Handler: n.count},
			{Name: "sweep", Description: "A platform job.", Schedule: "0 3 * * *", Handler: n.sweep},
		},
		Migrations: notesMigrations,
		Config:     notesConfig{Label: "notes", Region: "eu"},
		PersonalData: []sdk.DataClass{{
			Name: "notes", Table: "notes", Subject: "author", OnErase: sdk.Delete,
			Purpose: "What members write.", Retention: "Until the member is erased.",
			Columns: []sdk.PersonalColumn{{Name: "body", Kind: sdk.FreeText}},
		}},
	}
}

// notesConfig is the notes plugin's configuration; its values in the
// manifest are the defaults.
type notesConfig struct {
	Label  string `json:"label" maxLength:"20"`
	Region string `json:"region" enum:"eu,us"`
}

// echoQuery are the query parameters the echo route declares.
type echoQuery struct {
	Limit int      `query:"limit" minimum:"1" maximum:"100" default:"20"`
	Tag   []string `query:"tag" maxLength:"10"`
}

const (
	eventNoteCreated     = "notes.note.created.v1"
	eventCourseCreated   = "courses.course.created.v1"
	eventLessonCompleted = "courses.lesson.completed.v1"
)

var noteCreatedSchema = json.RawMessage(`{
	"type": "object",
	"required": ["id", "body"],
	"properties": {
		"id": {"type": "integer"},
		"body": {"type": "string", "minLength": 1}
	}
}`)

func (n *notes) Provision(_ context.Context, env *sdk.Env) error {
	n.env = env
	return nil
}

func (n *notes) Cleanup(context.Context) error {
	n.cleanedUp.Store(true)
	return nil
}

type note struct {
	ID     int64  `json:"id"`
	Author string `json:"author"`
	Body   string `json:"body"`
}

func (n *notes) create(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in struct {
		Body string `json:"body"`
	}
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if in.Body == "" {
		return nil, sdk.Invalid(sdk.FieldError{Field: "body", Message: "must not be empty"})
	}
	out := note{Author: req.Principal.ID(), Body: in.Body}
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, "INSERT INTO notes (tenant_id, author, body) VALUES ($1, $2, $3) RETURNING id",
			req.Principal.TenantID, out.Author, out.Body).Scan(&out.ID)
		if err != nil {
			return err
		}
		if err := req.Publish(ctx, tx, eventNoteCreated, map[string]any{"id": out.ID, "body": out.Body}); err != nil {
			return err
		}
		if in.Body == "rollback" { // after publishing: the event goes with the note
			return sdk.Errorf(sdk.ErrConflict, "rolled back on request")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := n.env.Host.Audit(ctx, sdk.AuditEntry{
		TenantID: req.Principal.TenantID, Actor: req.Principal, Action: "notes.note.create",
		TargetType: "note", TargetID: fmt.Sprint(out.ID), RequestID: req.RequestID,
	}); err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, out)
}

// list has no WHERE tenant_id on purpose: row-level security scopes it.
func (n *notes) list(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	items := []note{}
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, "SELECT id, author, body FROM notes ORDER BY id")
		var err error
		items, err = pgx.CollectRows(rows, pgx.RowToStructByPos[note])
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, map[string]any{"items": items})
}

func (n *notes) get(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var out note
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT id, author, body FROM notes WHERE id::text = $1", req.Param("id")).Scan(&out.ID, &out.Author, &out.Body)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no note %s", req.Param("id"))
	}
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (n *notes) panic(context.Context, *sdk.Request) (*sdk.Response, error) {
	panic("the handler broke")
}

// echo answers with what the handler was given.
func (n *notes) echo(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	settings, err := sdk.Config[notesConfig](ctx, req)
	if err != nil {
		return nil, err
	}
	var q echoQuery
	if req.Route == "GET /api/v1/notes-echo/{anything}" {
		if q, err = sdk.Query[echoQuery](req); err != nil {
			return nil, err
		}
	}
	return sdk.JSON(http.StatusOK, map[string]any{
		"route": req.Route, "path": req.Path, "params": req.Params, "query": req.Query,
		"principal": req.Principal, "config": req.Config, "request_id": req.RequestID,
		"has_deadline": !req.Deadline.IsZero(), "operator_config": n.env.OperatorConfig,
		"header": req.Header, "settings": settings, "typed_query": q,
	})
}

func (n *notes) fail(_ context.Context, req *sdk.Request) (*sdk.Response, error) {
	kind := req.Param("kind")
	if kind == "internal" {
		return nil, errors.New("connection refused to 10.0.0.7: a detail the client must not see")
	}
	sentinels := map[string]error{
		"invalid": sdk.ErrInvalid, "bad_request": sdk.ErrBadRequest, "unauthorized": sdk.ErrUnauthorized,
		"forbidden": sdk.ErrForbidden, "not_found": sdk.ErrNotFound, "conflict": sdk.ErrConflict, "gone": sdk.ErrGone,
		"too_many_requests": sdk.ErrTooManyRequests, "unavailable": sdk.ErrUnavailable, "too_large": sdk.ErrTooLarge,
	}
	e := sdk.Errorf(sentinels[kind], "failing with %s", kind)
	switch kind {
	case "invalid":
		e = sdk.Invalid(sdk.FieldError{Field: "a", Message: "bad"}, sdk.FieldError{Field: "b.0", Message: "worse"})
	case "conflict":
		e = e.WithCode("already-there")
	case "too_many_requests":
		e.RetryAfterSeconds = 7
	}
	return nil, e
}

// courseCreated writes a welcome note for a new course, once per event,
// and publishes it.
func (n *notes) courseCreated(ctx context.Context, ev *sdk.Event) error {
	var in struct {
		Title string `json:"title"`
	}
	if err := ev.Decode(&in); err != nil {
		return err
	}
	switch in.Title {
	case "":
		return fmt.Errorf("event %s: no title", ev.ID)
	case "panic":
		panic("the event handler broke")
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		var id int64
		body := "welcome to " + in.Title
		err := tx.QueryRow(ctx, "INSERT INTO notes (tenant_id, author, body) VALUES ($1, $2, $3) RETURNING id",
			ev.TenantID, ev.Actor, body).Scan(&id)
		if err != nil {
			return err
		}
		return ev.Publish(ctx, tx, eventNoteCreated, map[string]any{"id": id, "body": body})
	})
}

// lessonsCompleted writes a note per completed lesson, a batch of them in
// one statement, once per event; a lesson titled "fail" fails its batch.
func (n *notes) lessonsCompleted(ctx context.Context, b *sdk.Batch) error {
	return b.Tx(ctx, func(tx pgx.Tx, evs []*sdk.Event) error {
		bodies := make([]string, len(evs))
		for i, ev := range evs {
			var in struct {
				Title string `json:"title"`
			}
			if err := ev.Decode(&in); err != nil {
				return err
			}
			if in.Title == "fail" {
				return fmt.Errorf("event %s: lesson %q fails", ev.ID, in.Title)
			}
			bodies[i] = "completed " + in.Title
		}
		_, err := tx.Exec(ctx, "INSERT INTO notes (tenant_id, author, body) SELECT $1, 'batch', unnest($2::text[])", b.TenantID, bodies)
		return err
	})
}

// archive writes a note from the run's arguments and publishes it; with
// "fail" it fails after publishing.
func (n *notes) archive(ctx context.Context, run *sdk.JobRun) error {
	var args struct {
		Body string `json:"body"`
		Fail bool   `json:"fail"`
	}
	if err := json.Unmarshal(run.Args, &args); err != nil {
		return sdk.Errorf(sdk.ErrInvalid, "arguments: %v", err)
	}
	if args.Body == "" {
		return sdk.Invalid(sdk.FieldError{Field: "body", Message: "must not be empty"})
	}
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, "INSERT INTO notes (tenant_id, author, body) VALUES ($1, $2, $3) RETURNING id",
			run.TenantID, run.Principal.Actor(), args.Body).Scan(&id)
		if err != nil {
			return err
		}
		if err := run.Publish(ctx, tx, eventNoteCreated, map[string]any{"id": id, "body": args.Body}); err != nil {
			return err
		}
		if args.Fail {
			return errors.New("archive: failing after publishing, as asked")
		}
		run.SetOutput(fmt.Sprintf("archived note %d (%s, attempt %d)", id, run.Trigger, run.Attempt))
		return nil
	})
	return err
}

// count reports the institution's notes (and the event that triggered the
// run, if one did); it waits for its deadline when
// the institution has a note "slow".
func (n *notes) count(ctx context.Context, run *sdk.JobRun) error {
	var total, slow int
	err := run.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE body = 'slow') FROM notes").Scan(&total, &slow)
	})
	if err != nil {
		return err
	}
	if slow > 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	out := fmt.Sprintf("%d notes", total)
	if run.Event != nil {
		out += fmt.Sprintf(" (%s after %s of %s)", run.Trigger, run.Event.Type, run.Event.RequestID)
	}
	run.SetOutput(out)
	return nil
}

// sweep is a platform job: it sees no institution's notes.
func (n *notes) sweep(ctx context.Context, run *sdk.JobRun) error {
	var total int
	if err := run.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&total)
	}); err != nil {
		return err
	}
	if run.Trigger == "schedule" && run.Principal.Kind != "anonymous" {
		return fmt.Errorf("a scheduled run has no principal, got %+v", run.Principal)
	}
	run.SetOutput(fmt.Sprintf("tenant %q, %d notes visible", run.TenantID, total))
	return nil
}

// things is a second plugin, to share a database with notes.
type things struct{}

func (things) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "things", Version: "1.0.0",
		Migrations: fstest.MapFS{"0001_things.up.sql": {Data: []byte(`
			CREATE TABLE things (tenant_id uuid NOT NULL, name text NOT NULL);
			CREATE TABLE catalogue (name text NOT NULL);
			INSERT INTO catalogue VALUES ('shared within things only');`)}},
	}
}
func (things) Provision(context.Context, *sdk.Env) error { return nil }
func (things) Cleanup(context.Context) error             { return nil }

func mustJSON(t *testing.T, v any) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
