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
			{Method: "POST", Path: "/api/v1/notes", Permission: "notes.note.create", Handler: sdk.HandlerFunc(n.create)},
			{Method: "GET", Path: "/api/v1/notes", Permission: "notes.note.read", Handler: sdk.HandlerFunc(n.list)},
			{Method: "GET", Path: "/api/v1/notes/{id}", Permission: "notes.note.read", Handler: sdk.HandlerFunc(n.get)},
			{Method: "GET", Path: "/api/v1/notes-panic", Permission: "notes.note.read", Handler: sdk.HandlerFunc(n.panic)},
			{Method: "GET", Path: "/api/v1/notes-echo/{anything}", Permission: "notes.note.read", Handler: sdk.HandlerFunc(n.echo)},
			{Method: "GET", Path: "/api/v1/notes-errors/{kind}", Public: true, Handler: sdk.HandlerFunc(n.fail)},
			{Method: "GET", Path: "/api/v1/notes-status", Public: true, Handler: sdk.HandlerFunc(n.echo)},
		},
		Migrations: notesMigrations,
	}
}

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
		return tx.QueryRow(ctx, "INSERT INTO notes (tenant_id, author, body) VALUES ($1, $2, $3) RETURNING id",
			req.Principal.TenantID, out.Author, out.Body).Scan(&out.ID)
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
func (n *notes) echo(_ context.Context, req *sdk.Request) (*sdk.Response, error) {
	return sdk.JSON(http.StatusOK, map[string]any{
		"route": req.Route, "path": req.Path, "params": req.Params, "query": req.Query,
		"principal": req.Principal, "config": req.Config, "request_id": req.RequestID,
		"has_deadline": !req.Deadline.IsZero(), "operator_config": n.env.OperatorConfig,
		"header": req.Header,
	})
}

func (n *notes) fail(_ context.Context, req *sdk.Request) (*sdk.Response, error) {
	kind := req.Param("kind")
	if kind == "internal" {
		return nil, errors.New("connection refused to 10.0.0.7: a detail the client must not see")
	}
	e := sdk.Errorf(sdk.KindByName(kind), "failing with %s", kind)
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
