package governance_test

import (
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"

	"github.com/edulure/edulure/plugins/governance/internal/governance"
)

func reviewItems(t *testing.T, h *plugintest.Harness, who sdk.Principal, campaign, query string) []governance.ReviewItem {
	t.Helper()
	var out []governance.ReviewItem
	cursor := ""
	for {
		path := "/api/v1/governance/reviews/" + campaign + "/items?limit=3" + query
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		var page sdk.Page[governance.ReviewItem]
		ok(t, h.Do(who, "GET", path, nil), 200).JSON(t, &page)
		out = append(out, page.Items...)
		if page.NextCursor == "" {
			return out
		}
		cursor = page.NextCursor
	}
}

func findItem(t *testing.T, items []governance.ReviewItem, kind, id string) governance.ReviewItem {
	t.Helper()
	for _, it := range items {
		if it.GrantKind == kind && it.GrantID == id {
			return it
		}
	}
	t.Fatalf("no %s grant %s among %d items", kind, id, len(items))
	return governance.ReviewItem{}
}

func TestAccessReview(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a, b := newInst(t), newInst(t)
	// A second admin, a reviewer; a learner who left; an orphan key and
	// an unused custom role.
	reviewer := plugintest.User(a.id, "admin")
	leaver := plugintest.User(a.id, "learner")
	h.AddGrant(a.id, sdk.Grant{Kind: sdk.GrantAPIKey, ID: "key-1", Permissions: []string{"governance.evidence.read"}, Orphan: true, OrphanReason: "its creator is no longer a member"})
	h.AddGrant(a.id, sdk.Grant{Kind: sdk.GrantCustomRole, ID: "examiner", Role: "examiner", Permissions: []string{}, Orphan: true, OrphanReason: "nobody holds it"})
	h.AddGrant(b.id, sdk.Grant{Kind: sdk.GrantAPIKey, ID: "key-b", Permissions: []string{}})
	before, err := h.Env().Host.Grants(ctx(), a.id)
	require.NoError(t, err)

	problem(t, h.Do(a.auditor, "POST", "/api/v1/governance/reviews", map[string]any{"title": "Q4"}), 403, "permission-denied")
	var c governance.Campaign
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews", map[string]any{"title": "Q4 2026"}), 201).JSON(t, &c)
	require.Equal(t, len(before), c.Grants, "the whole population is frozen")
	require.Equal(t, 2, c.Orphans)

	// Later changes do not alter the frozen population.
	plugintest.User(a.id, "learner")
	items := reviewItems(t, h, a.auditor, c.ID, "")
	require.Len(t, items, len(before))
	for _, g := range before {
		findItem(t, items, g.Kind, g.ID)
	}
	require.Len(t, reviewItems(t, h, a.auditor, c.ID, "&orphan=true"), 2)
	for _, it := range items {
		require.NotEqual(t, "key-b", it.GrantID, "another institution's grants are not in the campaign")
	}

	// Nobody attests their own grant.
	own := findItem(t, items, sdk.GrantMembership, a.admin.UserID)
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+own.ID+"/attest", map[string]any{"decision": "keep"}), 403, "self-attestation")
	ownRole := findItem(t, items, sdk.GrantRole, a.admin.UserID+"/admin")
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+ownRole.ID+"/attest", map[string]any{"decision": "keep"}), 403, "self-attestation")
	ok(t, h.Do(reviewer, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+own.ID+"/attest", map[string]any{"decision": "keep"}), 200)
	problem(t, h.Do(a.auditor, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+own.ID+"/attest", map[string]any{"decision": "keep"}), 403, "permission-denied")
	problem(t, h.Do(reviewer, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+own.ID+"/attest", map[string]any{"decision": "maybe"}), 422, "")
	problem(t, h.Do(b.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+own.ID+"/attest", map[string]any{"decision": "keep"}), 404, "")

	// Revoke the leaver's membership and the orphan key.
	leaverItem := findItem(t, items, sdk.GrantMembership, leaver.UserID)
	key := findItem(t, items, sdk.GrantAPIKey, "key-1")
	for _, id := range []string{leaverItem.ID, key.ID} {
		ok(t, h.Do(reviewer, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+id+"/attest", map[string]any{"decision": "revoke", "note": "no longer needed"}), 200)
	}
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/close", nil), 409, "revocations-pending")
	var applied governance.ApplyResult
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/apply", nil), 200).JSON(t, &applied)
	require.Len(t, applied.Applied, 2)
	for _, it := range applied.Applied {
		require.Equal(t, "verified", *it.Revocation, "%+v", it)
	}
	require.Equal(t, 2, applied.Campaign.Verified)
	revs := h.Revocations()
	require.Len(t, revs, 2)
	require.Equal(t, a.admin.UserID, revs[0].Actor.UserID, "revoked as the admin who applied the campaign")
	after, err := h.Env().Host.Grants(ctx(), a.id)
	require.NoError(t, err)
	for _, g := range after {
		require.NotEqual(t, leaver.UserID, g.UserID)
		require.NotEqual(t, "key-1", g.ID)
	}
	problem(t, h.Do(reviewer, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+key.ID+"/attest", map[string]any{"decision": "keep"}), 409, "review-item-final")

	// Closing files the signed report as evidence, naming no one.
	ok(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/close", nil), 200).JSON(t, &c)
	require.Equal(t, "closed", c.Status)
	require.NotNil(t, c.EvidenceID)
	problem(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/close", nil), 409, "review-closed")
	problem(t, h.Do(reviewer, "POST", "/api/v1/governance/reviews/"+c.ID+"/items/"+own.ID+"/attest", map[string]any{"decision": "keep"}), 409, "review-closed")
	s := h.Stream(a.auditor, "GET", "/api/v1/governance/evidence/"+*c.EvidenceID+"/content")
	require.Equal(t, 200, s.Status)
	body, err := io.ReadAll(s)
	require.NoError(t, err)
	var doc struct {
		Payload   json.RawMessage `json:"payload"`
		Signature sdk.Signature   `json:"signature"`
	}
	require.NoError(t, json.Unmarshal(body, &doc))
	_, err = sdk.VerifySignature(h.JWKS(), doc.Signature, doc.Payload)
	require.NoError(t, err)
	var rep governance.ReviewReport
	require.NoError(t, json.Unmarshal(doc.Payload, &rep))
	require.Equal(t, len(before), len(rep.Items))
	require.Equal(t, 2, rep.Verified)
	for _, u := range []string{a.admin.UserID, leaver.UserID, reviewer.UserID} {
		require.NotContains(t, string(doc.Payload), u, "the report names no one")
	}
}

func TestRecurringCampaigns(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Date(2027, 1, 1, 8, 30, 0, 0, time.UTC) // 09:30 in Paris
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	h := plugintest.New(t, governance.NewWith(governance.WithClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })))
	a := newInst(t)
	run := func() string {
		t.Helper()
		out, err := h.RunJob(t, governance.JobReview, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerSchedule})
		require.NoError(t, err)
		return out
	}
	require.Contains(t, run(), "campaigns start by hand")
	h.SetTenantConfig(a.id, json.RawMessage(`{"review_schedule": "0 9 1 1,4,7,10 *", "retention_time_zone": "Europe/Paris"}`))
	require.Contains(t, run(), "grants frozen")
	require.Contains(t, run(), "has started", "one campaign per slot")
	set(time.Date(2027, 2, 1, 8, 30, 0, 0, time.UTC))
	require.Contains(t, run(), "no scheduled slot")
	set(time.Date(2027, 4, 1, 7, 5, 0, 0, time.UTC)) // 09:05 in Paris (summer time)
	require.Contains(t, run(), "grants frozen")
	var list sdk.Page[governance.Campaign]
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/reviews", nil), 200).JSON(t, &list)
	require.Len(t, list.Items, 2)
	require.Equal(t, "Access review 2027-04-01", list.Items[0].Title)
	require.Equal(t, time.Date(2027, 4, 1, 7, 0, 0, 0, time.UTC), list.Items[0].ScheduledFor.UTC())
	require.Equal(t, "plugin:governance", list.Items[0].CreatedBy)

	// On demand, with a title.
	out, err := h.RunJob(t, governance.JobReview, plugintest.JobRun{TenantID: a.id, Trigger: sdk.TriggerManual, Args: map[string]any{"title": "After the breach"}})
	require.NoError(t, err)
	require.Contains(t, out, "grants frozen")
	ok(t, h.Do(a.auditor, "GET", "/api/v1/governance/reviews", nil), 200).JSON(t, &list)
	require.Equal(t, "After the breach", list.Items[0].Title)
	require.Nil(t, list.Items[0].ScheduledFor)
}

// Closes of one campaign racing each other: one closes it, the others are
// 409 review-closed, and exactly one report is filed.
func TestConcurrentCloses(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	for round := 0; round < 5; round++ {
		var c governance.Campaign
		ok(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews", map[string]any{"title": fmt.Sprintf("Race %d", round)}), 201).JSON(t, &c)
		statuses := make([]int, 4)
		var wg sync.WaitGroup
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				statuses[i] = h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/close", nil).Status
			}()
		}
		wg.Wait()
		slices.Sort(statuses)
		require.Equal(t, []int{200, 409, 409, 409}, statuses)
		var page struct{ Items []governance.EvidenceItem }
		ok(t, h.Do(a.admin, "GET", "/api/v1/governance/evidence?kind=access_review&limit=100", nil), 200).JSON(t, &page)
		require.Len(t, page.Items, round+1, "one report per campaign")
	}
}

// An attestation racing the campaign's apply: the grant's decision and
// what became of it agree (never "keep" for a grant the apply revoked).
func TestAttestRacingApply(t *testing.T) {
	t.Parallel()
	h := setup(t)
	a := newInst(t)
	reviewer := plugintest.User(a.id, "admin")
	for round := 0; round < 8; round++ {
		h.AddGrant(a.id, sdk.Grant{Kind: sdk.GrantAPIKey, ID: fmt.Sprintf("race-%d", round), Permissions: []string{}})
		var c governance.Campaign
		ok(t, h.Do(a.admin, "POST", "/api/v1/governance/reviews", map[string]any{"title": fmt.Sprintf("Race %d", round)}), 201).JSON(t, &c)
		it := findItem(t, reviewItems(t, h, a.admin, c.ID, ""), sdk.GrantAPIKey, fmt.Sprintf("race-%d", round))
		attest := "/api/v1/governance/reviews/" + c.ID + "/items/" + it.ID + "/attest"
		ok(t, h.Do(reviewer, "POST", attest, map[string]any{"decision": "revoke"}), 200)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			h.Do(a.admin, "POST", "/api/v1/governance/reviews/"+c.ID+"/apply", nil)
		}()
		go func() {
			defer wg.Done()
			h.Do(reviewer, "POST", attest, map[string]any{"decision": "keep"})
		}()
		wg.Wait()
		got := findItem(t, reviewItems(t, h, a.admin, c.ID, ""), sdk.GrantAPIKey, fmt.Sprintf("race-%d", round))
		if got.Revocation != nil && *got.Revocation != "failed" {
			require.Equal(t, "revoke", *got.Decision, "a revoked grant's decision stays revoke (round %d)", round)
		}
	}
}
