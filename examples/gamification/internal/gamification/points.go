package gamification

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// AwardRequest is the body of POST /api/v1/leaderboard/points. The kernel
// checks it against these tags before the handler runs.
type AwardRequest struct {
	UserID string `json:"user_id" format:"uuid" doc:"The member who earns the points."`
	Points int    `json:"points" minimum:"1" maximum:"1000"`
	Reason string `json:"reason,omitempty" maxLength:"200"`
}

// Award is one award of points, as POST /api/v1/leaderboard/points answers.
type Award struct {
	ID        string    `json:"id" format:"uuid"`
	UserID    string    `json:"user_id" format:"uuid"`
	Points    int       `json:"points" minimum:"1" maximum:"1000"`
	Reason    string    `json:"reason"`
	AwardedBy string    `json:"awarded_by" doc:"The user or API key that gave it."`
	Total     int64     `json:"total" doc:"The member's points after the award."`
	CreatedAt time.Time `json:"created_at"`
}

// PointsAwarded is the data of gamification.points.awarded.v1, published
// with every award.
type PointsAwarded struct {
	AwardID  string `json:"award_id" format:"uuid"`
	UserID   string `json:"user_id" format:"uuid"`
	Points   int    `json:"points" minimum:"1" maximum:"1000"`
	Reason   string `json:"reason,omitempty" maxLength:"200"`
	LessonID string `json:"lesson_id,omitempty" format:"uuid" doc:"The completed lesson the points are for."`
	Total    int64  `json:"total" doc:"The member's points after the award."`
}

// errNotMember refuses an award to someone who is not a member of the
// institution: another institution's user, or no user at all.
var errNotMember = sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a member of this institution"})

// award handles POST /api/v1/leaderboard/points: it records the award,
// adds it to the member's total and publishes
// gamification.points.awarded.v1 in one transaction, then writes the audit
// entry.
//
// The audit entry comes after the commit, for two reasons. The kernel
// writes it in its own transaction, so writing it inside ours would not
// make the two atomic: an entry written before a failed commit would stay.
// And a call to the kernel is a round trip that a transaction should not
// stay open across. If the audit write fails, the award stands (it
// committed, and its event is on its way): the handler still answers 201,
// since a retry by the client would award the points twice, and logs the
// failure with the award's ID for an operator to see.
func (p *Plugin) award(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in AwardRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	a := Award{UserID: strings.ToLower(in.UserID), Points: in.Points, Reason: in.Reason, AwardedBy: req.Principal.ID()}
	if _, err := p.grant(ctx, req, &a, ""); err != nil {
		return nil, err
	}
	err := p.env.Host.Audit(ctx, sdk.AuditEntry{
		TenantID: req.Tenant(), Actor: req.Principal, Action: PermAward,
		TargetType: "user", TargetID: a.UserID, RequestID: req.RequestID,
		Details: map[string]any{"award_id": a.ID, "points": a.Points, "reason": a.Reason},
	})
	if err != nil {
		p.env.Logger.Error("the award stands, but its audit entry was not written",
			"award_id", a.ID, "tenant", req.Tenant(), "request_id", req.RequestID, "error", err)
	}
	return sdk.JSON(http.StatusCreated, a)
}

// grant gives a member the award a (UserID, Points, Reason, AwardedBy set),
// for a completed lesson when lessonID is set, in a transaction of s: it
// records the award, adds it to the member's total and publishes
// gamification.points.awarded.v1, which is relayed if and only if the award
// commits. It fills in a's ID, CreatedAt and Total. A route and an event
// handler share it, each passing itself as the Scope.
//
// It first asks the kernel whether a.UserID is a member of s's institution
// (before the transaction: a call to the kernel should not hold one open),
// and refuses anyone else with errNotMember. A lesson that paid before
// pays nothing: granted is false.
func (p *Plugin) grant(ctx context.Context, s sdk.Scope, a *Award, lessonID string) (granted bool, err error) {
	m, err := p.env.Host.Membership(ctx, s.Tenant(), a.UserID)
	if err != nil {
		return false, err
	}
	if !m.Member {
		return false, errNotMember
	}
	var lesson *string
	if lessonID != "" {
		lesson = &lessonID
	}
	err = s.Tx(ctx, func(tx pgx.Tx) error {
		// tenant_id comes from the scope; row-level security refuses any
		// other value.
		err := tx.QueryRow(ctx, `
			INSERT INTO awards (tenant_id, user_id, points, reason, awarded_by, lesson_id)
			VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (tenant_id, user_id, lesson_id) WHERE lesson_id IS NOT NULL DO NOTHING
			RETURNING id, created_at`,
			s.Tenant(), a.UserID, a.Points, a.Reason, a.AwardedBy, lesson).Scan(&a.ID, &a.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // this lesson earned the member points before
		}
		if err != nil {
			return err
		}
		granted = true
		if a.Total, err = addToTotal(ctx, tx, s.Tenant(), a.UserID, a.Points); err != nil {
			return err
		}
		return s.Publish(ctx, tx, EventPointsAwarded, PointsAwarded{
			AwardID: a.ID, UserID: a.UserID, Points: a.Points, Reason: a.Reason, LessonID: lessonID, Total: a.Total,
		})
	})
	return granted, err
}

// addToTotal adds points to the member's running total and returns the new
// total.
func addToTotal(ctx context.Context, tx pgx.Tx, tenantID, userID string, points int) (int64, error) {
	var total int64
	err := tx.QueryRow(ctx, `
		INSERT INTO totals (tenant_id, user_id, points) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id, user_id) DO UPDATE
			SET points = totals.points + EXCLUDED.points, updated_at = now()
		RETURNING points`,
		tenantID, userID, points).Scan(&total)
	return total, err
}
