package plugintest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// exampleT stands in for the *testing.T a real test passes to New; the
// examples below are test bodies.
type exampleT struct {
	testing.TB
	cleanups []func()
}

func (t *exampleT) Helper()                           {}
func (t *exampleT) Log(...any)                        {}
func (t *exampleT) Logf(string, ...any)               {}
func (t *exampleT) Cleanup(f func())                  { t.cleanups = append(t.cleanups, f) }
func (t *exampleT) Errorf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *exampleT) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// finish runs the cleanups, as the testing package does when a test ends.
func (t *exampleT) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}

func ExampleNew() {
	t := &exampleT{} // in a test: the *testing.T
	defer t.finish()

	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	res := h.Do(plugintest.User(tenant, "instructor"), "POST", "/api/v1/notes", map[string]string{"body": "first"})
	fmt.Println(res.Status)
	res = h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/notes", nil)
	var out struct{ Items []struct{ Body string } }
	res.JSON(t, &out)
	fmt.Println(res.Status, out.Items[0].Body)
	// Output:
	// 201
	// 200 first
}

func ExampleHarness_Do() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())

	// The kernel's checks come first: a learner lacks notes.note.create.
	res := h.Do(plugintest.User(plugintest.NewTenant(), "learner"), "POST", "/api/v1/notes", `{"body":"x"}`)
	fmt.Println(res.Status, res.Problem().Code)

	// Then the handler's own answer.
	res = h.Do(plugintest.APIKey(plugintest.NewTenant(), "notes.note.create"), "POST", "/api/v1/notes", `{"body":""}`)
	fmt.Println(res.Status, res.Problem().Kind, res.Problem().FieldNames())
	// Output:
	// 403 permission-denied
	// 422 invalid [body]
}

func ExampleHarness_InTenant() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	ctx := context.Background()

	// As the admin, behind row-level security's back: one note each.
	_, err := h.DB().Exec(ctx, "INSERT INTO plugin_notes.notes (tenant_id, author, body) VALUES ($1, 'x', 'a'), ($2, 'x', 'b')", a, b)
	if err != nil {
		panic(err)
	}
	// As the plugin's role: each institution sees its own.
	for _, tenant := range []string{a, b, ""} {
		err := h.InTenant(tenant, func(tx pgx.Tx) error {
			var n int
			err := tx.QueryRow(ctx, "SELECT count(*) FROM notes").Scan(&n)
			fmt.Println(n)
			return err
		})
		if err != nil {
			panic(err)
		}
	}
	// Output:
	// 1
	// 1
	// 0
}

func ExampleHarness_SetTenantConfig() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	h.SetTenantConfig(tenant, json.RawMessage(`{"label":"XP"}`))

	res := h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/notes-echo/config", nil)
	var out struct{ Config json.RawMessage }
	res.JSON(t, &out)
	fmt.Println(string(out.Config))
	// Output:
	// {"label":"XP"}
}

func ExampleHarness_AuditEntries() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())
	h.Do(plugintest.User(plugintest.NewTenant(), "admin"), "POST", "/api/v1/notes", map[string]string{"body": "x"})
	for _, e := range h.AuditEntries() {
		fmt.Println(e.Action, e.TargetType)
	}
	// Output:
	// notes.note.create note
}

func ExampleUser() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())

	// Do grants a user what the manifest's DefaultRoles give its roles.
	fmt.Println(h.Resolve(plugintest.User(plugintest.NewTenant(), "learner")).Permissions)
	fmt.Println(h.Resolve(plugintest.User(plugintest.NewTenant(), "instructor")).Permissions)
	// Output:
	// [notes.note.read]
	// [notes.note.create notes.note.read]
}

func ExampleResult_Problem() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())

	res := h.Do(plugintest.Anonymous(), "GET", "/api/v1/notes", nil)
	p := res.Problem()
	fmt.Println(p.Status, p.Kind, p.Code)
	// Output:
	// 401 unauthorized missing-credentials
}

func ExampleHarness_Deliver() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()

	// The same event (same ID) delivered twice: the handler's Event.Tx
	// applies it once.
	ev := plugintest.Event{
		ID: plugintest.NewEventID(), Type: "courses.course.created.v1", TenantID: tenant,
		Data: map[string]any{"title": "Algebra"},
	}
	fmt.Println(h.Deliver(t, ev), h.Deliver(t, ev))
	for _, e := range h.Published(t, tenant) {
		fmt.Println(e.Type, string(e.Data))
	}
	// Output:
	// <nil> <nil>
	// notes.note.created.v1 {"id": 1, "body": "welcome to Algebra"}
}

func ExampleHarness_RunJob() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()

	out, err := h.RunJob(t, "count", plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
	fmt.Println(out, err)
	_, err = h.RunJob(t, "archive", plugintest.JobRun{TenantID: tenant, Args: map[string]any{"body": ""}})
	fmt.Println(err)
	// Output:
	// 0 notes <nil>
	// invalid: body: must not be empty
}

func ExampleHarness_ErasePersonalData() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newNotes())
	tenant := plugintest.NewTenant()
	author := plugintest.User(tenant, "instructor")
	h.Do(author, "POST", "/api/v1/notes", map[string]string{"body": "Signed, Ada Lovelace"})

	fmt.Println(len(h.ExportPersonalData(t, tenant, author.UserID).Rows("notes")))
	// It also checks that a second erasure changes nothing and that the
	// person's export is empty now.
	fmt.Println(h.ErasePersonalData(t, tenant, author.UserID).Of("notes").Deleted)
	h.RequireNoTrace(t, author.UserID, "Ada Lovelace")
	// Output:
	// 1
	// 1
}

func ExampleHarness_Stream() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, newFeeds())
	tenant := plugintest.NewTenant()

	s := h.Stream(plugintest.User(tenant, "learner"), "GET", "/api/v1/feed")
	fmt.Println(s.Status, s.Header.Get("Content-Type"))
	h.Do(plugintest.User(tenant, "admin"), "POST", "/api/v1/feed", map[string]string{"text": "hello"}) // after the stream opened
	ev, _ := s.NextEvent()
	fmt.Println(ev.ID, ev.Event, ev.Data)
	s.Close() // as a client leaving: the handler's context ends, and Close waits for it
	// Output:
	// 200 text/event-stream
	// 1 post {"text":"hello"}
}

func ExampleHarness_Storage() {
	t := &exampleT{}
	defer t.finish()
	h := plugintest.New(t, &files{caps: []sdk.Capability{sdk.CapStorage}})
	tenant := plugintest.NewTenant()
	res := h.Do(plugintest.User(tenant, "learner"), "POST", "/api/v1/files", upload{Key: "essays/1.txt", Content: "hello"})
	fmt.Println(res.Status)

	// What the plugin stored, behind its back.
	obj, err := h.Storage(tenant).Stat(context.Background(), "essays/1.txt")
	fmt.Println(obj.Size, obj.SHA256[:12], err)
	_, err = h.Storage(plugintest.NewTenant()).Stat(context.Background(), "essays/1.txt")
	fmt.Println(errors.Is(err, sdk.ErrNotFound))
	// Output:
	// 201
	// 5 2cf24dba5fb0 <nil>
	// true
}
