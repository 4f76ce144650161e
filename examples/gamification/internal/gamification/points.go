package gamification

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Award is one award of points, as POST /api/v1/leaderboard/points answers.
type Award struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	Points    int       `json:"points"`
	Reason    string    `json:"reason"`
	AwardedBy string    `json:"awarded_by"`
	Total     int64     `json:"total"` // the user's points after the award
	CreatedAt time.Time `json:"created_at"`
}

type awardRequest struct {
	UserID string `json:"user_id"`
	Points *int   `json:"points"`
	Reason string `json:"reason"`
}

const (
	minPoints, maxPoints = 1, 1000
	maxReason            = 200
)

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// validate lists every field that is wrong, not just the first.
func (r *awardRequest) validate() error {
	var bad []sdk.FieldError
	switch {
	case r.UserID == "":
		bad = append(bad, sdk.FieldError{Field: "user_id", Message: "is required"})
	case !uuidPattern.MatchString(r.UserID):
		bad = append(bad, sdk.FieldError{Field: "user_id", Message: "must be a UUID"})
	}
	switch {
	case r.Points == nil:
		bad = append(bad, sdk.FieldError{Field: "points", Message: "is required"})
	case *r.Points < minPoints || *r.Points > maxPoints:
		bad = append(bad, sdk.FieldError{Field: "points", Message: "must be between 1 and 1000"})
	}
	if n := utf8.RuneCountInString(r.Reason); n > maxReason || !utf8.ValidString(r.Reason) {
		bad = append(bad, sdk.FieldError{Field: "reason", Message: "must be at most 200 characters"})
	}
	if len(bad) > 0 {
		return sdk.Invalid(bad...)
	}
	return nil
}

// award handles POST /api/v1/leaderboard/points: it records the award,
// adds it to the user's total, publishes gamification.points.awarded.v1 and
// writes the audit entry, all or nothing.
func (p *Plugin) award(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in awardRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := in.validate(); err != nil {
		return nil, err
	}
	a := Award{UserID: strings.ToLower(in.UserID), Points: *in.Points, Reason: in.Reason, AwardedBy: req.Principal.ID()}
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		// tenant_id comes from the principal; row-level security refuses
		// any other value.
		err := tx.QueryRow(ctx, `
			INSERT INTO awards (tenant_id, user_id, points, reason, awarded_by)
			VALUES ($1, $2, $3, $4, $5)
			RETURNING id, created_at`,
			req.Principal.TenantID, a.UserID, a.Points, a.Reason, a.AwardedBy).Scan(&a.ID, &a.CreatedAt)
		if err != nil {
			return err
		}
		if a.Total, err = addToTotal(ctx, tx, req.Principal.TenantID, a.UserID, a.Points); err != nil {
			return err
		}
		// Relayed to subscribers if and only if the award commits.
		err = req.Publish(ctx, tx, EventPointsAwarded, PointsAwarded{
			AwardID: a.ID, UserID: a.UserID, Points: a.Points, Reason: a.Reason, Total: a.Total,
		})
		if err != nil {
			return err
		}
		// Inside the transaction: if the audit log refuses, nothing is awarded.
		return p.env.Host.Audit(ctx, sdk.AuditEntry{
			TenantID: req.Principal.TenantID, Actor: req.Principal, Action: PermAward,
			TargetType: "user", TargetID: a.UserID, RequestID: req.RequestID,
			Details: map[string]any{"award_id": a.ID, "points": a.Points, "reason": a.Reason},
		})
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusCreated, a)
}
