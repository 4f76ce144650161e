package wire

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

var postsClass = &pluginv1.RetentionClass{Name: "posts", Table: "posts", TimeColumn: "created_at", Subject: "author_id",
	HoldColumns: map[string]string{"space": "space_id"}, Actions: []string{"delete", "anonymise"}}

func TestCheckRetentionRequest(t *testing.T) {
	now := time.Now()
	ok := &pluginv1.RetentionRequest{TenantId: "t", Class: "posts", CutoffUnixMs: now.Add(-time.Hour).UnixMilli(), Action: "delete",
		Holds: []*pluginv1.RetentionHold{{Kind: "tenant"}, {Kind: "person", Id: "u"}, {Kind: "space", Id: "s"}}, SampleLimit: 100}
	require.NoError(t, CheckRetentionRequest(postsClass, ok, now))
	require.Equal(t, []string{"tenant", "person", "space"}, HoldKinds(postsClass))
	for want, change := range map[string]func(r *pluginv1.RetentionRequest){
		`action "archive" is not one it supports`: func(r *pluginv1.RetentionRequest) { r.Action = "archive" },
		"a cutoff is required":                    func(r *pluginv1.RetentionRequest) { r.CutoffUnixMs = 0 },
		"is in the future":                        func(r *pluginv1.RetentionRequest) { r.CutoffUnixMs = now.Add(time.Hour).UnixMilli() },
		"sample limit 101":                        func(r *pluginv1.RetentionRequest) { r.SampleLimit = 101 },
		`hold kind "course" is not one it takes`:  func(r *pluginv1.RetentionRequest) { r.Holds = []*pluginv1.RetentionHold{{Kind: "course", Id: "c"}} },
		"a person hold needs an ID":               func(r *pluginv1.RetentionRequest) { r.Holds = []*pluginv1.RetentionHold{{Kind: "person"}} },
		"a space hold needs an ID":                func(r *pluginv1.RetentionRequest) { r.Holds = []*pluginv1.RetentionHold{{Kind: "space", Id: "a\x00"}} },
	} {
		r := &pluginv1.RetentionRequest{TenantId: ok.TenantId, Class: ok.Class, CutoffUnixMs: ok.CutoffUnixMs, Action: ok.Action}
		change(r)
		require.ErrorContains(t, CheckRetentionRequest(postsClass, r, now), want)
	}
}

func TestCheckRetentionClasses(t *testing.T) {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, strings.TrimSpace(fmt.Sprintf(format, args...))) }
	checkRetention(&pluginv1.Manifest{Retention: []*pluginv1.RetentionClass{
		postsClass,
		{Name: "posts", Table: "posts", TimeColumn: "created_at", Actions: []string{"delete"}},
		{Name: "Bad", Table: "edulure_outbox", TimeColumn: "at; drop", Actions: nil},
		{Name: "holds", Table: "t", TimeColumn: "at", HoldColumns: map[string]string{"person": "x", "course": "Course Id"}, Actions: []string{"delete", "delete"}},
		{Name: "archive", Table: "t", TimeColumn: "at", Actions: []string{"archive"}},
	}}, bad)
	all := strings.Join(errs, "\n")
	for _, want := range []string{
		`retention class "posts" is declared twice`,
		`retention class "Bad": a name is lowercase`,
		`table edulure_outbox is the kernel's`,
		`time column "at; drop" is not a lowercase SQL name`,
		`retention class "Bad": declares no action`,
		`hold kind "person": lowercase letters`,
		`hold kind "course": column "Course Id" is not a lowercase SQL name`,
		`action "delete" is listed twice`,
		`action archive: declare the capability "storage"`,
	} {
		require.Contains(t, all, want)
	}
}

func TestCheckSignRequest(t *testing.T) {
	require.NoError(t, CheckSignRequest("governance", "governance.retention.execution", []byte("x")))
	require.Error(t, CheckSignRequest("governance", "courses.x", nil))
	require.Error(t, CheckSignRequest("governance", "governance.", nil))
	require.Error(t, CheckSignRequest("governance", "governance.X y", nil))
	require.Error(t, CheckSignRequest("governance", "governance.x", make([]byte, MaxSignPayload+1)))
}

// FuzzCheckRetentionRequest: whatever a request holds, the check answers
// without panicking, and never passes a cutoff in the future or a hold of
// a kind the class does not take.
func FuzzCheckRetentionRequest(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add("delete", int64(1_700_000_000_000), "person", "u", int32(5))
	f.Add("", int64(0), "", "", int32(-1))
	f.Fuzz(func(t *testing.T, action string, cutoff int64, kind, id string, samples int32) {
		r := &pluginv1.RetentionRequest{Class: "posts", Action: action, CutoffUnixMs: cutoff, SampleLimit: samples,
			Holds: []*pluginv1.RetentionHold{{Kind: kind, Id: id}}}
		if CheckRetentionRequest(postsClass, r, now) == nil {
			if time.UnixMilli(cutoff).After(now.Add(MaxCutoffAhead)) || (kind != "tenant" && kind != "person" && kind != "space") {
				t.Fatalf("passed: %v", r)
			}
		}
	})
}
