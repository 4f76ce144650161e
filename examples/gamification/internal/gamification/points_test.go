package gamification_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/examples/gamification/internal/gamification"
)

const awardPath = "/api/v1/leaderboard/points"

func TestAward(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher, student := plugintest.User(tenant, "instructor"), member(tenant)

	res := h.Do(teacher, "POST", awardPath, map[string]any{"user_id": student, "points": 5, "reason": "helped a classmate"})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a gamification.Award
	res.JSON(t, &a)
	require.NotEmpty(t, a.ID)
	require.Equal(t, student, a.UserID)
	require.Equal(t, 5, a.Points)
	require.Equal(t, "helped a classmate", a.Reason)
	require.Equal(t, teacher.UserID, a.AwardedBy)
	require.EqualValues(t, 5, a.Total)
	require.False(t, a.CreatedAt.IsZero())

	res = h.Do(teacher, "POST", awardPath, map[string]any{"user_id": strings.ToUpper(student), "points": 7})
	require.Equal(t, http.StatusCreated, res.Status, res)
	res.JSON(t, &a)
	require.Equal(t, student, a.UserID, "UUIDs are stored in one form")
	require.EqualValues(t, 12, a.Total)
}

func TestAwardIsAudited(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	admin, student := plugintest.User(tenant, "admin"), member(tenant)
	res := h.DoRequest(plugintest.Request{
		Principal: admin, Method: "POST", Path: awardPath, RequestID: "req-42",
		Body: map[string]any{"user_id": student, "points": 3, "reason": "quiz"},
	})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a gamification.Award
	res.JSON(t, &a)

	entries := h.AuditEntries()
	require.Len(t, entries, 1)
	e := entries[0]
	require.Equal(t, "gamification.points.award", e.Action)
	require.Equal(t, tenant, e.TenantID)
	require.Equal(t, admin.UserID, e.Actor.UserID)
	require.Equal(t, "user", e.TargetType)
	require.Equal(t, student, e.TargetID)
	require.Equal(t, "req-42", e.RequestID)
	require.Equal(t, map[string]any{"award_id": a.ID, "points": 3, "reason": "quiz"}, e.Details)

	// A refused request writes nothing.
	h.Do(admin, "POST", awardPath, map[string]any{"user_id": student, "points": 0})
	require.Len(t, h.AuditEntries(), 1)
}

// An award publishes gamification.points.awarded.v1 in its transaction, as
// the member who gave it.
func TestAwardIsPublished(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher, student := plugintest.User(tenant, "instructor"), member(tenant)
	res := h.DoRequest(plugintest.Request{
		Principal: teacher, Method: "POST", Path: awardPath, RequestID: "req-7",
		Body: map[string]any{"user_id": student, "points": 4, "reason": "quiz"},
	})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a gamification.Award
	res.JSON(t, &a)

	pub := h.Published(t, tenant)
	require.Len(t, pub, 1)
	require.Equal(t, gamification.EventPointsAwarded, pub[0].Type)
	require.Equal(t, "user:"+teacher.UserID, pub[0].Actor)
	require.Equal(t, "req-7", pub[0].RequestID)
	var data gamification.PointsAwarded
	require.NoError(t, pub[0].Decode(&data))
	require.Equal(t, gamification.PointsAwarded{AwardID: a.ID, UserID: student, Points: 4, Reason: "quiz", Total: 4}, data)

	// A refused award publishes nothing.
	h.Do(teacher, "POST", awardPath, map[string]any{"user_id": student, "points": 0})
	require.Len(t, h.Published(t, tenant), 1)
}

func TestAwardValidation(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	teacher, student := plugintest.User(tenant, "instructor"), member(tenant)
	for _, tc := range []struct {
		name   string
		body   any
		status int
		fields []string
	}{
		{name: "everything wrong", body: map[string]any{"user_id": "bob", "points": 0, "reason": strings.Repeat("x", 201)}, status: 422, fields: []string{"points", "reason", "user_id"}},
		{name: "nothing given", body: map[string]any{}, status: 422, fields: []string{"points", "user_id"}},
		{name: "too many points", body: map[string]any{"user_id": student, "points": 1001}, status: 422, fields: []string{"points"}},
		{name: "negative points", body: map[string]any{"user_id": student, "points": -5}, status: 422, fields: []string{"points"}},
		{name: "points not a number", body: map[string]any{"user_id": student, "points": "5"}, status: 422, fields: []string{"points"}},
		{name: "fractional points", body: map[string]any{"user_id": student, "points": 1.5}, status: 422, fields: []string{"points"}},
		{name: "reason of 200 characters is fine", body: map[string]any{"user_id": student, "points": 1, "reason": strings.Repeat("é", 200)}, status: 201},
		{name: "unknown field", body: map[string]any{"user_id": student, "points": 1, "bonus": true}, status: 422, fields: []string{"bonus"}},
		{name: "NUL in the reason", body: map[string]any{"user_id": student, "points": 1, "reason": "a\u0000b"}, status: 422, fields: []string{"reason"}},
		{name: "not JSON", body: "points please", status: 400},
		{name: "no body", body: nil, status: 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(teacher, "POST", awardPath, tc.body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.fields != nil {
				require.Equal(t, tc.fields, res.Problem().FieldNames(), res)
			}
		})
	}
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT count(*) FROM plugin_gamification.awards").Scan(&n))
	require.Equal(t, 1, n, "only the valid award was written")
}

func TestWhoMayAward(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant := plugintest.NewTenant()
	body := map[string]any{"user_id": member(tenant), "points": 1}
	for _, tc := range []struct {
		name   string
		role   string
		status int
	}{
		{"admin", "admin", http.StatusCreated},
		{"instructor", "instructor", http.StatusCreated},
		{"learner", "learner", http.StatusForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(plugintest.User(tenant, tc.role), "POST", awardPath, body)
			require.Equal(t, tc.status, res.Status, res)
			if tc.status == http.StatusForbidden {
				require.Equal(t, "permission-denied", res.Problem().Code)
			}
		})
	}
	res := h.Do(plugintest.Anonymous(), "POST", awardPath, body)
	require.Equal(t, http.StatusUnauthorized, res.Status)
	res = h.Do(plugintest.APIKey(tenant, gamification.PermAward), "POST", awardPath, body)
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a gamification.Award
	res.JSON(t, &a)
	require.NotEmpty(t, a.AwardedBy, "an API key is recorded as the awarder")
}

// Points go to members of the institution only: the kernel says who is one.
func TestAwardNeedsAMember(t *testing.T) {
	t.Parallel()
	h := setup(t)
	tenant, other := plugintest.NewTenant(), plugintest.NewTenant()
	teacher := plugintest.User(tenant, "instructor")
	for _, tc := range []struct{ name, user string }{
		{"a member of another institution", member(other)},
		{"no user at all", plugintest.NewID()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := h.Do(teacher, "POST", awardPath, map[string]any{"user_id": tc.user, "points": 5})
			require.Equal(t, http.StatusUnprocessableEntity, res.Status, res)
			require.Equal(t, []sdk.FieldError{{Field: "user_id", Message: "is not a member of this institution"}}, res.Problem().Fields)
		})
	}
	require.Empty(t, h.Published(t, tenant))
	require.Empty(t, h.AuditEntries())
	var n int
	require.NoError(t, h.DB().QueryRow(t.Context(), "SELECT count(*) FROM plugin_gamification.awards").Scan(&n))
	require.Zero(t, n)
}

// The audit entry is written after the award commits. When the kernel
// refuses it, the award stands and the client gets its 201: a retry would
// award the points twice. The failure is in the plugin's log.
func TestAwardStandsWhenTheAuditWriteFails(t *testing.T) {
	t.Parallel()
	tenant := plugintest.NewTenant()
	student := member(tenant)
	h := plugintest.New(t, gamification.New(), plugintest.WithHost(plugintest.HostFuncs{
		MembershipFunc: func(_ context.Context, tenantID, userID string) (sdk.Membership, error) {
			return sdk.Membership{Member: tenantID == tenant && userID == student}, nil
		},
		AuditFunc: func(context.Context, sdk.AuditEntry) error { return errors.New("the audit log is unavailable") },
	}))
	res := h.Do(plugintest.User(tenant, "instructor"), "POST", awardPath, map[string]any{"user_id": student, "points": 5})
	require.Equal(t, http.StatusCreated, res.Status, res)
	var a gamification.Award
	res.JSON(t, &a)
	require.EqualValues(t, 5, a.Total)
	require.Len(t, h.Published(t, tenant), 1, "the award and its event committed")
}
