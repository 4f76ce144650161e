package governance

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// SignPurposeReview is the purpose of a campaign report's signature.
const SignPurposeReview = Name + ".review.report"

// ReviewReportType names a campaign report.
const ReviewReportType = "edulure.governance.access_review.v1"

// Campaign is an access review: the institution's grants frozen when it
// started, each to be attested keep or revoke.
type Campaign struct {
	ID         string     `json:"id" format:"uuid"`
	Title      string     `json:"title"`
	Status     string     `json:"status" enum:"open,closed"`
	CreatedBy  string     `json:"created_by"`
	StartedAt  time.Time  `json:"started_at"`
	ClosedAt   *time.Time `json:"closed_at"`
	ClosedBy   *string    `json:"closed_by"`
	Grants     int        `json:"grants" doc:"grants frozen at the start"`
	Orphans    int        `json:"orphans"`
	Kept       int        `json:"kept"`
	Revoke     int        `json:"revoke" doc:"attested revoke"`
	Undecided  int        `json:"undecided"`
	Verified   int        `json:"revocations_verified" doc:"revocations applied and verified gone"`
	Failed     int        `json:"revocations_failed"`
	EvidenceID *string    `json:"evidence_id" doc:"the signed campaign report, once closed"`
	// ScheduledFor is the slot of review_schedule that started it.
	ScheduledFor *time.Time `json:"scheduled_for" doc:"the slot of review_schedule that started it; null when started by hand"`
}

// NewCampaign starts a campaign.
type NewCampaign struct {
	Title string `json:"title" minLength:"1" maxLength:"200"`
}

// ReviewItem is one frozen grant and its attestation.
type ReviewItem struct {
	ID              string     `json:"id" format:"uuid"`
	GrantKind       string     `json:"grant_kind" enum:"membership,role,custom_role,api_key"`
	GrantID         string     `json:"grant_id"`
	UserID          *string    `json:"user_id" format:"uuid" doc:"the member (membership, role) or the key's creator (api_key)"`
	Role            string     `json:"role"`
	KeyID           string     `json:"key_id"`
	Permissions     []string   `json:"permissions"`
	GrantedAt       *time.Time `json:"granted_at"`
	Orphan          bool       `json:"orphan"`
	OrphanReason    string     `json:"orphan_reason"`
	Decision        *string    `json:"decision" enum:"keep,revoke"`
	DecidedBy       *string    `json:"decided_by"`
	DecidedAt       *time.Time `json:"decided_at"`
	Note            string     `json:"note"`
	Revocation      *string    `json:"revocation" enum:"applied,verified,failed" doc:"verified: revoked and no longer listed by the kernel"`
	RevocationError string     `json:"revocation_error"`
	RevokedAt       *time.Time `json:"revoked_at"`
}

// Attestation is a reviewer's decision on one grant.
type Attestation struct {
	Decision string `json:"decision" enum:"keep,revoke"`
	Note     string `json:"note,omitempty" maxLength:"1000"`
}

// ReviewItemQuery filters a campaign's items.
type ReviewItemQuery struct {
	Decision string `json:"decision,omitempty" enum:"pending,keep,revoke"`
	Orphan   bool   `json:"orphan,omitempty" doc:"only orphan grants"`
}

// ApplyResult is what applying a campaign's revocations did.
type ApplyResult struct {
	Campaign Campaign     `json:"campaign"`
	Applied  []ReviewItem `json:"applied"`
}

func (p *Plugin) reviewRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/governance/reviews", Permission: PermReviewManage, Summary: "Start an access review: the institution's grants are frozen now",
			Request: NewCampaign{}, Response: Campaign{}, Status: http.StatusCreated, Handler: p.startCampaign},
		{Method: "GET", Path: "/api/v1/governance/reviews", Permission: PermReviewRead, Summary: "Access review campaigns, newest first",
			Paginated: true, Response: sdk.Page[Campaign]{}, Handler: p.listCampaigns},
		{Method: "GET", Path: "/api/v1/governance/reviews/{campaign_id}", Permission: PermReviewRead, Summary: "A campaign and its counts",
			Response: Campaign{}, Handler: p.getCampaign},
		{Method: "GET", Path: "/api/v1/governance/reviews/{campaign_id}/items", Permission: PermReviewRead, Summary: "The grants frozen by a campaign",
			Paginated: true, Query: ReviewItemQuery{}, Response: sdk.Page[ReviewItem]{}, Handler: p.listReviewItems},
		{Method: "POST", Path: "/api/v1/governance/reviews/{campaign_id}/items/{item_id}/attest", Permission: PermReviewAttest,
			Summary: "Attest keep or revoke for a grant (never one's own)", Request: Attestation{}, Response: ReviewItem{}, Handler: p.attest},
		{Method: "POST", Path: "/api/v1/governance/reviews/{campaign_id}/apply", Permission: PermReviewManage,
			Summary: "Revoke through the kernel the grants attested revoke, and verify they are gone", Response: ApplyResult{}, Handler: p.applyCampaign},
		{Method: "POST", Path: "/api/v1/governance/reviews/{campaign_id}/close", Permission: PermReviewManage,
			Summary: "Close a campaign: its signed report is filed as evidence", Response: Campaign{}, Handler: p.closeCampaign},
	}
}

const campaignColumns = `c.id, c.title, c.status, c.created_by, c.started_at, c.closed_at, c.closed_by, c.grants, c.evidence_id, c.scheduled_for,
	(SELECT count(*) FILTER (WHERE orphan) FROM review_items i WHERE i.campaign_id = c.id),
	(SELECT count(*) FILTER (WHERE decision = 'keep') FROM review_items i WHERE i.campaign_id = c.id),
	(SELECT count(*) FILTER (WHERE decision = 'revoke') FROM review_items i WHERE i.campaign_id = c.id),
	(SELECT count(*) FILTER (WHERE decision IS NULL) FROM review_items i WHERE i.campaign_id = c.id),
	(SELECT count(*) FILTER (WHERE revocation = 'verified') FROM review_items i WHERE i.campaign_id = c.id),
	(SELECT count(*) FILTER (WHERE revocation = 'failed') FROM review_items i WHERE i.campaign_id = c.id)`

func scanCampaign(row pgx.Row) (Campaign, error) {
	var c Campaign
	err := row.Scan(&c.ID, &c.Title, &c.Status, &c.CreatedBy, &c.StartedAt, &c.ClosedAt, &c.ClosedBy, &c.Grants, &c.EvidenceID, &c.ScheduledFor,
		&c.Orphans, &c.Kept, &c.Revoke, &c.Undecided, &c.Verified, &c.Failed)
	return c, err
}

func loadCampaign(ctx context.Context, tx pgx.Tx, id string) (Campaign, error) {
	c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignColumns+` FROM review_campaigns c WHERE c.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, sdk.Errorf(sdk.ErrNotFound, "no access review %s in this institution", id)
	}
	return c, err
}

const reviewItemColumns = `id, grant_kind, grant_id, user_id, role, key_id, permissions, granted_at, orphan, orphan_reason,
	decision, decided_by, decided_at, note, revocation, revocation_error, revoked_at`

func scanReviewItem(row pgx.Row) (ReviewItem, error) {
	var i ReviewItem
	err := row.Scan(&i.ID, &i.GrantKind, &i.GrantID, &i.UserID, &i.Role, &i.KeyID, &i.Permissions, &i.GrantedAt, &i.Orphan, &i.OrphanReason,
		&i.Decision, &i.DecidedBy, &i.DecidedAt, &i.Note, &i.Revocation, &i.RevocationError, &i.RevokedAt)
	if i.Permissions == nil {
		i.Permissions = []string{}
	}
	return i, err
}

func (p *Plugin) startCampaign(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in NewCampaign
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	title := trimmed(&bad, "title", in.Title, true)
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	c, err := p.createCampaign(ctx, req, title, actor(req.Principal), nil)
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.review.start", "governance_review", c.ID, map[string]any{"grants": c.Grants, "orphans": c.Orphans})
	return sdk.JSON(http.StatusCreated, c)
}

// createCampaign freezes the institution's grants into a new campaign.
func (p *Plugin) createCampaign(ctx context.Context, s sdk.Scope, title, by string, scheduledFor *time.Time) (Campaign, error) {
	grants, err := s.Host().Grants(ctx, s.Tenant())
	if err != nil {
		return Campaign{}, err
	}
	var c Campaign
	err = s.Tx(ctx, func(tx pgx.Tx) error {
		var id string
		if err := tx.QueryRow(ctx, `INSERT INTO review_campaigns (title, created_by, grants, scheduled_for) VALUES ($1, $2, $3, $4) RETURNING id`,
			title, by, len(grants), scheduledFor).Scan(&id); err != nil {
			return err
		}
		type row struct {
			Kind         string     `json:"kind"`
			ID           string     `json:"id"`
			UserID       *string    `json:"user_id"`
			Role         string     `json:"role"`
			KeyID        string     `json:"key_id"`
			Permissions  []string   `json:"permissions"`
			GrantedAt    *time.Time `json:"granted_at"`
			Orphan       bool       `json:"orphan"`
			OrphanReason string     `json:"orphan_reason"`
		}
		rows := make([]row, 0, len(grants))
		for _, g := range grants {
			r := row{Kind: g.Kind, ID: g.ID, Role: g.Role, Permissions: g.Permissions, Orphan: g.Orphan, OrphanReason: truncate(g.OrphanReason, 500)}
			if u, ok := sdk.NormalizeUUID(g.UserID); ok {
				r.UserID = &u
			}
			if !g.CreatedAt.IsZero() {
				r.GrantedAt = &g.CreatedAt
			}
			if r.Role == "" && len(g.Roles) > 0 {
				r.Role = strings.Join(g.Roles, ",")
			}
			r.Role = truncate(r.Role, 100)
			if g.Kind == sdk.GrantAPIKey {
				r.KeyID = truncate(g.ID, 100)
			}
			if r.Permissions == nil {
				r.Permissions = []string{}
			}
			rows = append(rows, r)
		}
		doc, err := json.Marshal(rows)
		if err != nil {
			return err
		}
		// One statement for the whole population (COPY does not run under
		// row-level security).
		if _, err := tx.Exec(ctx, `INSERT INTO review_items (campaign_id, grant_kind, grant_id, user_id, role, key_id, permissions, granted_at, orphan, orphan_reason)
			SELECT $1, r.kind, r.id, r.user_id, r.role, r.key_id, ARRAY(SELECT jsonb_array_elements_text(r.permissions)), r.granted_at, r.orphan, r.orphan_reason
			FROM jsonb_to_recordset($2::jsonb) AS r(kind text, id text, user_id uuid, role text, key_id text, permissions jsonb, granted_at timestamptz, orphan boolean, orphan_reason text)`,
			id, doc); err != nil {
			return err
		}
		c, err = loadCampaign(ctx, tx, id)
		return err
	})
	if isUnique(err, "review_campaigns_slot") {
		return c, sdk.Errorf(sdk.ErrConflict, "the scheduled campaign of %s was started by another run", scheduledFor).WithCode("review-slot-taken")
	}
	return c, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

func (p *Plugin) listCampaigns(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	return newestFirst(ctx, req, `SELECT `+campaignColumns+` FROM review_campaigns c WHERE true`, "c.started_at", "c.id", nil,
		scanCampaign, func(c Campaign) (time.Time, string) { return c.StartedAt, c.ID })
}

func (p *Plugin) getCampaign(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("campaign_id")
	if err != nil {
		return nil, err
	}
	var c Campaign
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		c, err = loadCampaign(ctx, tx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, c)
}

func (p *Plugin) listReviewItems(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("campaign_id")
	if err != nil {
		return nil, err
	}
	q, err := sdk.Query[ReviewItemQuery](req)
	if err != nil {
		return nil, err
	}
	pr, err := req.Page()
	if err != nil {
		return nil, err
	}
	afterID := ""
	if pr.After != nil {
		if len(pr.After) != 1 || !sdk.IsUUID(pr.After[0]) {
			return nil, sdk.Invalid(sdk.FieldError{Field: "cursor", Message: "is not a cursor returned by this API"})
		}
		afterID = pr.After[0]
	}
	var items []ReviewItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := loadCampaign(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+reviewItemColumns+` FROM review_items WHERE campaign_id = $1
			AND ($2 = '' OR ($2 = 'pending' AND decision IS NULL) OR decision = $2) AND (NOT $3 OR orphan)
			AND ($4 = '' OR id > $4::uuid) ORDER BY id LIMIT $5`, id, q.Decision, q.Orphan, afterID, pr.Limit+1)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReviewItem, error) { return scanReviewItem(r) })
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, pr.Limit, func(i ReviewItem) []string { return []string{i.ID} }))
}

// ownGrant reports whether the grant is the principal's own: their
// membership or role, or the API key they act as.
func ownGrant(p sdk.Principal, it ReviewItem) bool {
	switch {
	case p.Kind == sdk.APIKey:
		return it.GrantKind == sdk.GrantAPIKey && it.GrantID == p.APIKeyID
	case it.GrantKind == sdk.GrantCustomRole:
		return slices.Contains(p.Roles, it.GrantID)
	case it.GrantKind == sdk.GrantAPIKey:
		// a key one created acts for one
		return it.UserID != nil && *it.UserID == p.UserID
	default:
		return it.UserID != nil && *it.UserID == p.UserID
	}
}

func (p *Plugin) attest(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	campaignID, err := req.UUIDParam("campaign_id")
	if err != nil {
		return nil, err
	}
	itemID, err := req.UUIDParam("item_id")
	if err != nil {
		return nil, err
	}
	var in Attestation
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var it ReviewItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		// FOR SHARE: a close in progress is waited for (then this is
		// refused), and a close waits for this attestation.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM review_campaigns WHERE id = $1 FOR SHARE`, campaignID); err != nil {
			return err
		}
		c, err := loadCampaign(ctx, tx, campaignID)
		if err != nil {
			return err
		}
		if c.Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "access review %s is closed", campaignID).WithCode("review-closed")
		}
		it, err = scanReviewItem(tx.QueryRow(ctx, `SELECT `+reviewItemColumns+` FROM review_items WHERE id = $1 AND campaign_id = $2 FOR UPDATE`, itemID, campaignID))
		if errors.Is(err, pgx.ErrNoRows) {
			return sdk.Errorf(sdk.ErrNotFound, "no grant %s in access review %s", itemID, campaignID)
		}
		if err != nil {
			return err
		}
		if ownGrant(req.Principal, it) {
			return sdk.Errorf(sdk.ErrForbidden, "nobody attests their own grant: another reviewer must decide on %s %s", it.GrantKind, it.GrantID).WithCode("self-attestation")
		}
		if it.Revocation != nil && *it.Revocation != "failed" {
			return sdk.Errorf(sdk.ErrConflict, "the grant's revocation was applied: its decision is final").WithCode("review-item-final")
		}
		it, err = scanReviewItem(tx.QueryRow(ctx, `UPDATE review_items SET decision = $2, note = $3, decided_by = $4, decided_at = now()
			WHERE id = $1 RETURNING `+reviewItemColumns, itemID, in.Decision, in.Note, actor(req.Principal)))
		return err
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.review.attest", "governance_review_item", it.ID,
		map[string]any{"campaign_id": campaignID, "grant_kind": it.GrantKind, "decision": in.Decision})
	return sdk.JSON(http.StatusOK, it)
}

func (p *Plugin) applyCampaign(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	campaignID, err := req.UUIDParam("campaign_id")
	if err != nil {
		return nil, err
	}
	out := ApplyResult{Applied: []ReviewItem{}}
	// One transaction holding the campaign's row: an attestation (which
	// shares the row) lands before the apply reads the decisions, or
	// after it recorded what became of them (then it is final); a second
	// apply or a close waits.
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM review_campaigns WHERE id = $1 FOR UPDATE`, campaignID); err != nil {
			return err
		}
		c, err := loadCampaign(ctx, tx, campaignID)
		if err != nil {
			return err
		}
		if c.Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "access review %s is closed", campaignID).WithCode("review-closed")
		}
		rows, err := tx.Query(ctx, `SELECT `+reviewItemColumns+` FROM review_items WHERE campaign_id = $1 AND decision = 'revoke'
			AND (revocation IS NULL OR revocation = 'failed') ORDER BY (grant_kind = 'membership'), id`, campaignID)
		if err != nil {
			return err
		}
		open, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReviewItem, error) { return scanReviewItem(r) })
		if err != nil {
			return err
		}
		for _, it := range open {
			state, msg := "applied", ""
			rerr := req.Host().RevokeGrant(ctx, req.Principal, req.Tenant(), sdk.GrantRef{Kind: it.GrantKind, ID: it.GrantID},
				"access review "+campaignID)
			if rerr != nil && !errors.Is(rerr, sdk.ErrNotFound) {
				state, msg = "failed", truncate(rerr.Error(), 1000)
			}
			rec, err := recordRevocation(ctx, tx, it.ID, state, msg)
			if err != nil {
				return err
			}
			out.Applied = append(out.Applied, rec)
		}
		// Verified afterwards: the kernel no longer lists what was revoked.
		if len(out.Applied) > 0 {
			grants, err := req.Host().Grants(ctx, req.Tenant())
			if err != nil {
				return err
			}
			for i, it := range out.Applied {
				if deref(it.Revocation) != "applied" {
					continue
				}
				still := slices.ContainsFunc(grants, func(g sdk.Grant) bool { return g.Kind == it.GrantKind && g.ID == it.GrantID })
				state, msg := "verified", ""
				if still {
					state, msg = "failed", "revoked, but the kernel still lists the grant"
				}
				if out.Applied[i], err = recordRevocation(ctx, tx, it.ID, state, msg); err != nil {
					return err
				}
			}
		}
		out.Campaign, err = loadCampaign(ctx, tx, campaignID)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.review.apply", "governance_review", campaignID,
		map[string]any{"revocations": len(out.Applied), "verified": out.Campaign.Verified, "failed": out.Campaign.Failed})
	return sdk.JSON(http.StatusOK, out)
}

// recordRevocation records, in tx, what became of a grant's revocation.
func recordRevocation(ctx context.Context, tx pgx.Tx, itemID, state, msg string) (ReviewItem, error) {
	return scanReviewItem(tx.QueryRow(ctx, `UPDATE review_items SET revocation = $2, revocation_error = $3,
		revoked_at = CASE WHEN $2 = 'failed' THEN revoked_at ELSE coalesce(revoked_at, now()) END WHERE id = $1 RETURNING `+reviewItemColumns, itemID, state, msg))
}

// ReviewReport is a closed campaign's report, filed as evidence with the
// kernel's signature. It names no person: grants of members appear by
// kind, role and permissions; keys and custom roles by their IDs.
type ReviewReport struct {
	Type       string             `json:"type"`
	CampaignID string             `json:"campaign_id"`
	TenantID   string             `json:"tenant_id"`
	Title      string             `json:"title"`
	StartedAt  time.Time          `json:"started_at"`
	ClosedAt   time.Time          `json:"closed_at"`
	Grants     int                `json:"grants"`
	Orphans    int                `json:"orphans"`
	Kept       int                `json:"kept"`
	Revoke     int                `json:"revoke"`
	Undecided  int                `json:"undecided"`
	Verified   int                `json:"revocations_verified"`
	Failed     int                `json:"revocations_failed"`
	Items      []ReviewReportItem `json:"items"`
}

// ReviewReportItem is one grant in a report.
type ReviewReportItem struct {
	ItemID       string   `json:"item_id"`
	GrantKind    string   `json:"grant_kind"`
	GrantID      string   `json:"grant_id,omitempty"`
	Role         string   `json:"role,omitempty"`
	Permissions  []string `json:"permissions"`
	Orphan       bool     `json:"orphan"`
	OrphanReason string   `json:"orphan_reason,omitempty"`
	Decision     string   `json:"decision"`
	Revocation   string   `json:"revocation,omitempty"`
}

func (p *Plugin) closeCampaign(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	campaignID, err := req.UUIDParam("campaign_id")
	if err != nil {
		return nil, err
	}
	var c Campaign
	var evidenceID string
	// One transaction holding the campaign's row: a concurrent close waits
	// and then finds it closed (one report, never two), and an
	// attestation (which shares the row) lands before the report or is
	// refused after it.
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM review_campaigns WHERE id = $1 FOR UPDATE`, campaignID); err != nil {
			return err
		}
		if c, err = loadCampaign(ctx, tx, campaignID); err != nil {
			return err
		}
		if c.Status != "open" {
			return sdk.Errorf(sdk.ErrConflict, "access review %s is closed already", campaignID).WithCode("review-closed")
		}
		var pending int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM review_items WHERE campaign_id = $1 AND decision = 'revoke' AND revocation IS NULL`, campaignID).Scan(&pending); err != nil {
			return err
		}
		if pending > 0 {
			return sdk.Errorf(sdk.ErrConflict, "%d grants attested revoke are not revoked yet: apply the campaign first (POST .../apply)", pending).WithCode("revocations-pending")
		}
		rows, err := tx.Query(ctx, `SELECT `+reviewItemColumns+` FROM review_items WHERE campaign_id = $1 ORDER BY id`, campaignID)
		if err != nil {
			return err
		}
		items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ReviewItem, error) { return scanReviewItem(r) })
		if err != nil {
			return err
		}
		closed := utc(p.now())
		rep := ReviewReport{Type: ReviewReportType, CampaignID: c.ID, TenantID: req.Tenant(), Title: c.Title, StartedAt: utc(c.StartedAt), ClosedAt: closed,
			Grants: c.Grants, Orphans: c.Orphans, Kept: c.Kept, Revoke: c.Revoke, Undecided: c.Undecided, Verified: c.Verified, Failed: c.Failed,
			Items: make([]ReviewReportItem, 0, len(items))}
		for _, it := range items {
			ri := ReviewReportItem{ItemID: it.ID, GrantKind: it.GrantKind, Role: it.Role, Permissions: it.Permissions, Orphan: it.Orphan,
				OrphanReason: it.OrphanReason, Decision: "undecided", Revocation: deref(it.Revocation)}
			if it.GrantKind == sdk.GrantAPIKey || it.GrantKind == sdk.GrantCustomRole {
				ri.GrantID = it.GrantID
			}
			if it.Decision != nil {
				ri.Decision = *it.Decision
			}
			rep.Items = append(rep.Items, ri)
		}
		payload, err := json.Marshal(rep)
		if err != nil {
			return err
		}
		sig, err := req.Host().Sign(ctx, SignPurposeReview, payload)
		if err != nil {
			return err
		}
		doc, _ := json.Marshal(map[string]any{"payload": json.RawMessage(payload), "signature": sig})
		evidenceID = uuid.NewString()
		if err := fileEvidence(ctx, tx, req, evidenceID, "access_review", "Access review: "+c.Title, "application/json", doc, actor(req.Principal), req.RequestID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE review_campaigns SET status = 'closed', closed_at = $2, closed_by = $3, evidence_id = $4 WHERE id = $1`,
			campaignID, closed, actor(req.Principal), evidenceID); err != nil {
			return err
		}
		c, err = loadCampaign(ctx, tx, campaignID)
		return err
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.review.close", "governance_review", c.ID,
		map[string]any{"evidence_id": evidenceID, "grants": c.Grants, "undecided": c.Undecided})
	return sdk.JSON(http.StatusOK, c)
}
