package gamification_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

func award(t *testing.T, h *plugintest.Harness, by sdk.Principal, user string, points int) {
	t.Helper()
	res := h.Do(by, "POST", awardPath, map[string]any{"user_id": user, "points": points})
	require.Equal(t, http.StatusCreated, res.Status, res)
}

func board(t *testing.T, h *plugintest.Harness, p sdk.Principal, path string) gamification.Leaderboard {
	t.Helper()
	res := h.Do(p, "GET", path, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var b gamification.Leaderboard
	res.JSON(t, &b)
	return b
}

func TestLeaderboardOrder(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")
	ids := []string{member(tenant), member(tenant), member(tenant)}
	slices.Sort(ids)
	ann, bob, cat := ids[0], ids[1], ids[2]
	award(t, h, teacher, bob, 10)
	award(t, h, teacher, ann, 30)
	award(t, h, teacher, cat, 5)
	award(t, h, teacher, cat, 5)

	b := board(t, h, plugintest.User(tenant, "learner"), "/api/v1/leaderboard")
	require.Equal(t, []gamification.Entry{
		{UserID: ann, Points: 30, Rank: 1},
		{UserID: bob, Points: 10, Rank: 2},
		{UserID: cat, Points: 10, Rank: 2},
	}, b.Items, "ties share a rank and are listed by user ID")
	require.Equal(t, "points", b.Label, "the schema's default label")

	b = board(t, h, teacher, "/api/v1/leaderboard?limit=1")
	require.Equal(t, []gamification.Entry{{UserID: ann, Points: 30, Rank: 1}}, b.Items)
}

func TestLeaderboardLimit(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")
	for i := range 12 {
		award(t, h, teacher, member(tenant), i+1)
	}
	require.Len(t, board(t, h, teacher, "/api/v1/leaderboard").Items, 10, "10 by default")
	require.Len(t, board(t, h, teacher, "/api/v1/leaderboard?limit=100").Items, 12)
	for _, bad := range []string{"0", "101", "-1", "ten", "", "1.5"} {
		res := h.Do(teacher, "GET", "/api/v1/leaderboard?limit="+bad, nil)
		require.Equal(t, http.StatusUnprocessableEntity, res.Status, "limit=%q: %s", bad, res)
		require.Equal(t, []string{"limit"}, res.Problem().FieldNames())
	}
}

// Institution B sees nothing of institution A's points, though the plugin's
// queries have no WHERE tenant_id: row-level security scopes them.
func TestTenantIsolation(t *testing.T) {
	t.Parallel()
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	student := plugintest.NewID()
	h := memberOfBoth(t, student, a, b)
	award(t, h, plugintest.User(a, "instructor"), student, 50)

	require.Len(t, board(t, h, plugintest.User(a, "learner"), "/api/v1/leaderboard").Items, 1)
	require.Empty(t, board(t, h, plugintest.User(b, "learner"), "/api/v1/leaderboard").Items)
	res := h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/leaderboard/users/"+student, nil)
	require.Equal(t, http.StatusNotFound, res.Status, res)

	// The same user in B starts from zero.
	award(t, h, plugintest.User(b, "instructor"), student, 1)
	res = h.Do(plugintest.User(b, "learner"), "GET", "/api/v1/leaderboard/users/"+student, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var s gamification.Standing
	res.JSON(t, &s)
	require.EqualValues(t, 1, s.Points)
}

func TestLabelFromTenantConfig(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	h.SetTenantConfig(a, json.RawMessage(`{"label":"XP","points_per_lesson":5}`))
	require.Equal(t, "XP", board(t, h, plugintest.User(a, "learner"), "/api/v1/leaderboard").Label)
	require.Equal(t, "points", board(t, h, plugintest.User(b, "learner"), "/api/v1/leaderboard").Label, "one institution's label is not another's")

	res := h.Do(plugintest.User(a, "learner"), "GET", "/api/v1/leaderboard/users/"+plugintest.NewID(), nil)
	require.Contains(t, res.Problem().Detail, "no XP yet")
}

func TestUserStanding(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")
	top, second := member(tenant), member(tenant)
	award(t, h, teacher, top, 100)
	award(t, h, teacher, second, 40)
	award(t, h, teacher, second, 2)

	res := h.Do(plugintest.User(tenant, "learner"), "GET", "/api/v1/leaderboard/users/"+second, nil)
	require.Equal(t, http.StatusOK, res.Status, res)
	var s gamification.Standing
	res.JSON(t, &s)
	require.Equal(t, gamification.Standing{Entry: gamification.Entry{UserID: second, Points: 42, Rank: 2}, Label: "points"}, s)

	res = h.Do(teacher, "GET", "/api/v1/leaderboard/users/"+plugintest.NewID(), nil)
	require.Equal(t, http.StatusNotFound, res.Status, res)
	require.Equal(t, "not_found", res.Problem().Kind)

	res = h.Do(teacher, "GET", "/api/v1/leaderboard/users/bob", nil)
	require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
	require.Equal(t, []string{"user_id"}, res.Problem().FieldNames())
}

// The operator's config block in plugins.hcl sets the installation's
// default; an institution's own configuration overrides it.
func TestLabelFromOperatorConfig(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, gamification.New(), plugintest.WithOperatorConfig(json.RawMessage(`{"label":"XP"}`)))
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	h.SetTenantConfig(b, json.RawMessage(`{"label":"stars"}`))
	require.Equal(t, "XP", board(t, h, plugintest.User(a, "learner"), "/api/v1/leaderboard").Label)
	require.Equal(t, "stars", board(t, h, plugintest.User(b, "learner"), "/api/v1/leaderboard").Label)
}
