package telemetry

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

const (
	testHome = "https://edulure.dev"
	testUser = "0193a1d2-0000-7000-8000-000000000001"
)

func validStatement() map[string]any {
	return map[string]any{
		"id":        "6F1C0C6E-5B8E-4C53-9D0A-6C2F3E0B7A11",
		"actor":     map[string]any{"objectType": "Agent", "account": map[string]any{"homePage": testHome, "name": testUser}},
		"verb":      map[string]any{"id": VerbPassed, "display": map[string]any{"en-US": "passed"}},
		"object":    map[string]any{"id": "https://edulure.dev/xapi/activities/quizzes/1", "definition": map[string]any{"type": ActivityAssessment, "name": map[string]any{"en": "Quiz"}}},
		"result":    map[string]any{"score": map[string]any{"scaled": 0.8, "raw": 8, "min": 0, "max": 10}, "success": true, "completion": true, "duration": "PT1M30.5S"},
		"context":   map[string]any{"registration": "0193a1d2-0000-7000-8000-0000000000ff", "contextActivities": map[string]any{"parent": []any{map[string]any{"id": "https://edulure.dev/xapi/activities/courses/1"}}}, "extensions": map[string]any{ExtCourseID: "0193A1D2-0000-7000-8000-00000000000C"}},
		"timestamp": "2026-01-31T10:30:00.123+01:00",
		"version":   "2.0.0",
	}
}

func TestParseStatementNormalises(t *testing.T) {
	t.Parallel()
	raw, _ := json.Marshal(validStatement())
	s, errs := parseStatement(raw, testHome)
	require.Nil(t, errs)
	require.Equal(t, "6f1c0c6e-5b8e-4c53-9d0a-6c2f3e0b7a11", s.ID)
	require.Equal(t, testUser, s.UserID)
	require.Equal(t, "2026-01-31T09:30:00.123Z", s.Timestamp.Format("2006-01-02T15:04:05.000Z07:00"))
	require.Equal(t, VerbPassed, s.Verb)
	require.Equal(t, ActivityAssessment, s.ObjectType)
	require.Equal(t, "0193a1d2-0000-7000-8000-00000000000c", s.CourseID)
	require.InDelta(t, 0.8, *s.ScoreScaled, 1e-9)
	require.Equal(t, int64(90500), *s.DurationMS)
	require.True(t, *s.Success && *s.Completion)
	require.Contains(t, string(s.Raw), `"timestamp":"2026-01-31T09:30:00.123Z"`)
	require.Contains(t, string(s.Raw), `"id":"6f1c0c6e-5b8e-4c53-9d0a-6c2f3e0b7a11"`)
	// The same content, keys in another order: the same bytes and hash.
	again, _ := json.Marshal(map[string]any{"version": "2.0.0", "timestamp": "2026-01-31T09:30:00.123Z", "result": validStatement()["result"],
		"context": validStatement()["context"], "object": validStatement()["object"], "verb": validStatement()["verb"], "actor": validStatement()["actor"], "id": validStatement()["id"]})
	s2, errs := parseStatement(again, testHome)
	require.Nil(t, errs)
	require.Equal(t, s.SHA256, s2.SHA256)
}

func TestParseStatementRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(m map[string]any)
		field  string
	}{
		{"no id", func(m map[string]any) { delete(m, "id") }, "id"},
		{"id not a UUID", func(m map[string]any) { m["id"] = "42" }, "id"},
		{"email actor", func(m map[string]any) { m["actor"] = map[string]any{"mbox": "mailto:a@b.c"} }, "actor.mbox"},
		{"hashed email", func(m map[string]any) {
			m["actor"].(map[string]any)["mbox_sha1sum"] = "ab"
		}, "actor.mbox_sha1sum"},
		{"a name", func(m map[string]any) { m["actor"].(map[string]any)["name"] = "Ada" }, "actor.name"},
		{"group", func(m map[string]any) { m["actor"].(map[string]any)["objectType"] = "Group" }, "actor.objectType"},
		{"foreign home page", func(m map[string]any) {
			m["actor"].(map[string]any)["account"].(map[string]any)["homePage"] = "https://lms.example"
		}, "actor.account.homePage"},
		{"account name not a user ID", func(m map[string]any) {
			m["actor"].(map[string]any)["account"].(map[string]any)["name"] = "ada"
		}, "actor.account.name"},
		{"no verb", func(m map[string]any) { delete(m, "verb") }, "verb"},
		{"verb not an IRI", func(m map[string]any) { m["verb"] = map[string]any{"id": "completed"} }, "verb.id"},
		{"bad display", func(m map[string]any) { m["verb"].(map[string]any)["display"] = map[string]any{"not a tag!": "x"} }, "verb.display.not a tag!"},
		{"agent object", func(m map[string]any) { m["object"].(map[string]any)["objectType"] = "Agent" }, "object.objectType"},
		{"object without id", func(m map[string]any) { delete(m["object"].(map[string]any), "id") }, "object.id"},
		{"scaled out of range", func(m map[string]any) {
			m["result"].(map[string]any)["score"] = map[string]any{"scaled": 1.5}
		}, "result.score.scaled"},
		{"raw above max", func(m map[string]any) {
			m["result"].(map[string]any)["score"] = map[string]any{"raw": 11, "min": 0, "max": 10}
		}, "result.score.raw"},
		{"bad duration", func(m map[string]any) { m["result"].(map[string]any)["duration"] = "90 seconds" }, "result.duration"},
		{"success not a bool", func(m map[string]any) { m["result"].(map[string]any)["success"] = "yes" }, "result.success"},
		{"instructor named", func(m map[string]any) {
			m["context"].(map[string]any)["instructor"] = map[string]any{"mbox": "mailto:t@x"}
		}, "context.instructor"},
		{"course extension not a UUID", func(m map[string]any) {
			m["context"].(map[string]any)["extensions"] = map[string]any{ExtCourseID: 7}
		}, "context.extensions." + ExtCourseID},
		{"no timestamp", func(m map[string]any) { delete(m, "timestamp") }, "timestamp"},
		{"timestamp without zone", func(m map[string]any) { m["timestamp"] = "2026-01-31T10:30:00" }, "timestamp"},
		{"stored by the client", func(m map[string]any) { m["stored"] = "2026-01-31T10:30:00Z" }, "stored"},
		{"authority", func(m map[string]any) { m["authority"] = map[string]any{} }, "authority"},
		{"attachments", func(m map[string]any) { m["attachments"] = []any{} }, "attachments"},
		{"unknown property", func(m map[string]any) { m["colour"] = "blue" }, "colour"},
		{"old version", func(m map[string]any) { m["version"] = "0.95" }, "version"},
		{"NUL", func(m map[string]any) { m["verb"] = map[string]any{"id": "https://x.test/\u0000"} }, "verb.id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := validStatement()
			tc.change(m)
			raw, _ := json.Marshal(m)
			s, errs := parseStatement(raw, testHome)
			require.Nil(t, s)
			var fields []string
			for _, e := range errs {
				fields = append(fields, e.Field)
				require.NotEmpty(t, e.Message)
			}
			require.Contains(t, fields, tc.field)
		})
	}
	for _, raw := range []string{``, `[]`, `"x"`, `{} {}`, `{"id":`} {
		_, errs := parseStatement(json.RawMessage(raw), testHome)
		require.NotEmpty(t, errs, raw)
	}
	big := validStatement()
	big["result"].(map[string]any)["response"] = strings.Repeat("x", maxStatementBytes)
	raw, _ := json.Marshal(big)
	_, errs := parseStatement(raw, testHome)
	require.NotEmpty(t, errs)
}

// FuzzParseStatement: whatever comes in, the checks answer without
// panicking, and what they accept is a statement the plugin can store:
// valid JSON within the size limit, an id and an actor that are UUIDs, IRIs
// for verb and object, a timestamp, and a normal form that is a fixed
// point (checking it again gives the same bytes).
func FuzzParseStatement(f *testing.F) {
	raw, _ := json.Marshal(validStatement())
	f.Add(string(raw))
	f.Add(`{"id":"6f1c0c6e-5b8e-4c53-9d0a-6c2f3e0b7a11","actor":{"account":{"homePage":"https://edulure.dev","name":"0193a1d2-0000-7000-8000-000000000001"}},"verb":{"id":"x:y"},"object":{"id":"urn:a"},"timestamp":"2026-01-01T00:00:00Z"}`)
	f.Add(`{"actor":{"mbox":"mailto:a@b"},"result":{"duration":"P1W","score":{"scaled":-1}}}`)
	f.Add(`{"context":{"contextActivities":{"parent":{"id":"https://a"}},"extensions":{"https://edulure.dev/xapi/extensions/course_id":"x"}}}`)
	f.Fuzz(func(t *testing.T, in string) {
		s, errs := parseStatement(json.RawMessage(in), testHome)
		if errs != nil {
			require.Nil(t, s)
			return
		}
		require.True(t, json.Valid(s.Raw) && utf8.Valid(s.Raw))
		require.LessOrEqual(t, len(s.Raw), maxStatementBytes)
		require.Len(t, s.ID, 36)
		require.Len(t, s.UserID, 36)
		require.True(t, isIRI(s.Verb) && isIRI(s.ObjectID))
		require.False(t, s.Timestamp.IsZero())
		again, errs := parseStatement(s.Raw, testHome)
		require.Nil(t, errs)
		require.Equal(t, string(s.Raw), string(again.Raw))
	})
}
