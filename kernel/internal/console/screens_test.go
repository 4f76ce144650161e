package console

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestScreens: a plugin's list routes become screens (pages, or one array
// of objects), lists under an item are reached from their parent's rows,
// a POST on a list's path (or right under it) is its form, and other
// routes and the kernel's are not screens.
func TestScreens(t *testing.T) {
	t.Parallel()
	page := func(item string) map[string]any {
		return map[string]any{"200": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
			"type": "object", "properties": map[string]any{"items": map[string]any{"type": "array", "items": map[string]any{"$ref": "#/components/schemas/" + item}}, "next_cursor": map[string]any{"type": "string"}}}}}}}
	}
	op := func(plugin, id string, resp map[string]any, params ...string) map[string]any {
		o := map[string]any{"x-plugin": plugin, "operationId": id, "summary": id + " summary", "x-permission": plugin + ".read", "responses": resp}
		var ps []any
		for _, p := range params {
			ps = append(ps, map[string]any{"in": "path", "name": p})
		}
		ps = append(ps, map[string]any{"in": "query", "name": "status"}, map[string]any{"in": "query", "name": "limit"})
		o["parameters"] = ps
		return o
	}
	create := map[string]any{"x-plugin": "courses", "summary": "Create a course", "requestBody": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
		"type": "object", "required": []any{"title"}, "properties": map[string]any{"title": map[string]any{"type": "string"}, "pass_mark": map[string]any{"type": "integer"}}}}}}}
	board := map[string]any{"200": map[string]any{"content": map[string]any{"application/json": map[string]any{"schema": map[string]any{
		"type": "object", "properties": map[string]any{"label": map[string]any{"type": "string"}, "entries": map[string]any{"type": "array", "items": map[string]any{"type": "object", "properties": map[string]any{"user_id": map[string]any{"type": "string"}, "points": map[string]any{"type": "integer"}}}}}}}}}}
	doc := map[string]any{
		"paths": map[string]any{
			"/api/v1/courses":                     map[string]any{"get": op("courses", "courses_get_courses", page("courses.Course")), "post": create},
			"/api/v1/courses/{course_id}":         map[string]any{"get": op("courses", "courses_get_course", map[string]any{"200": map[string]any{}}, "course_id")},
			"/api/v1/courses/{course_id}/cohorts": map[string]any{"get": op("courses", "courses_get_cohorts", page("courses.Cohort"), "course_id")},
			"/api/v1/courses/{course_id}/publish": map[string]any{"post": map[string]any{"x-plugin": "courses", "summary": "Publish", "requestBody": map[string]any{"required": false}}},
			"/api/v1/courses/{course_id}/archive": map[string]any{"post": map[string]any{"x-plugin": "courses", "summary": "Archive"}},
			"/api/v1/courses/{course_id}/reviews": map[string]any{"post": map[string]any{"x-plugin": "courses", "summary": "Review", "requestBody": map[string]any{"required": true}}},
			"/api/v1/leaderboard":                 map[string]any{"get": op("gamification", "gamification_get_leaderboard", board)},
			"/api/v1/leaderboard/points":          map[string]any{"post": map[string]any{"x-plugin": "gamification", "summary": "Award points", "requestBody": create["requestBody"]}},
			"/api/v1/tenant/members":              map[string]any{"get": map[string]any{"operationId": "listMembers", "responses": page("Member")}},
			"/api/v1/telemetry/exports":           map[string]any{"get": op("telemetry", "telemetry_get_exports", page("telemetry.Export"))},
		},
		"components": map[string]any{"schemas": map[string]any{
			"courses.Course":   map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}, "title": map[string]any{"type": "string"}, "tenant_id": map[string]any{"type": "string"}, "tags": map[string]any{"type": "array"}, "status": map[string]any{"type": "string"}}},
			"courses.Cohort":   map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}, "name": map[string]any{"type": "string"}}},
			"telemetry.Export": map[string]any{"type": "object", "properties": map[string]any{"id": map[string]any{"type": "string"}}},
		}},
	}
	// Through JSON, as the console reads the document.
	raw, err := json.Marshal(doc)
	require.NoError(t, err)
	var parsed map[string]any
	require.NoError(t, json.Unmarshal(raw, &parsed))
	screens := parseScreens(parsed)

	byID := map[string]*screen{}
	for _, s := range screens {
		byID[s.ID] = s
	}
	require.Len(t, screens, 4, "lists only, plugins' only: %v", byID)
	courses := byID["courses_get_courses"]
	require.Equal(t, "Courses", courses.Label)
	require.Equal(t, []string{"title", "status", "id"}, courses.Columns, "scalars, telling ones first, no tenant_id, ID last")
	require.Equal(t, []screenQuery{{Name: "status"}}, courses.Query)
	require.Equal(t, "items", courses.Key)
	require.NotNil(t, courses.Create)
	require.Equal(t, "/api/v1/courses", courses.Create.Path)
	require.Len(t, courses.Nested, 1)
	require.Equal(t, "courses_get_cohorts", courses.Nested[0].ID)
	require.Equal(t, "Cohorts", courses.Nested[0].Label)
	require.Equal(t, []string{"course_id"}, courses.Nested[0].Params)
	require.Equal(t, []action{
		{Label: "Archive", Path: "/api/v1/courses/{course_id}/archive", Param: "course_id"},
		{Label: "Publish", Path: "/api/v1/courses/{course_id}/publish", Param: "course_id"},
	}, courses.Actions, "row actions: POSTs on one row with no required body")

	board2 := byID["gamification_get_leaderboard"]
	require.Equal(t, "entries", board2.Key, "one array of objects is the list")
	require.Equal(t, "/api/v1/leaderboard/points", board2.Create.Path)
	require.Equal(t, "Exports", byID["telemetry_get_exports"].Label, "the plugin's own name is not repeated")

	fields := schemaFields(courses.Create.Schema, nil, nil, nil)
	require.Equal(t, "title", fields[0].Name, "required first")
	require.True(t, fields[0].Required)
	require.Equal(t, "integer", fields[1].Kind)
}
