package governance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Legal holds (docs/governance.md, "Retention"): while active, a hold
// keeps what it covers from every retention execution.

// Hold is a legal hold: while active, retention keeps what it covers.
type Hold struct {
	ID         string     `json:"id" format:"uuid"`
	Kind       string     `json:"kind" doc:"tenant (the whole institution), person (subject_id a user ID), or a kind a plugin's class declares (course...)"`
	SubjectID  *string    `json:"subject_id"`
	Reason     string     `json:"reason"`
	CreatedBy  string     `json:"created_by"`
	CreatedAt  time.Time  `json:"created_at"`
	ReleasedAt *time.Time `json:"released_at"`
	ReleasedBy *string    `json:"released_by"`
}

// HoldInput places a hold.
type HoldInput struct {
	Kind      string `json:"kind" pattern:"^[a-z][a-z0-9_]{0,39}$"`
	SubjectID string `json:"subject_id,omitempty" maxLength:"200" doc:"what the hold covers: a user ID (person), a course ID (course)...; none for tenant"`
	Reason    string `json:"reason" minLength:"1" maxLength:"1000"`
}

// HoldQuery filters holds.
type HoldQuery struct {
	Active bool `json:"active,omitempty" doc:"only holds not released"`
}

const holdColumns = `id, kind, subject_id, reason, created_by, created_at, released_at, released_by`

func scanHold(row pgx.Row) (Hold, error) {
	var h Hold
	err := row.Scan(&h.ID, &h.Kind, &h.SubjectID, &h.Reason, &h.CreatedBy, &h.CreatedAt, &h.ReleasedAt, &h.ReleasedBy)
	return h, err
}

func (p *Plugin) listHolds(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[HoldQuery](req)
	if err != nil {
		return nil, err
	}
	return newestFirst(ctx, req, `SELECT `+holdColumns+` FROM legal_holds WHERE (NOT $1 OR released_at IS NULL)`, "created_at", "id", []any{q.Active},
		scanHold, func(h Hold) (time.Time, string) { return h.CreatedAt, h.ID })
}

func (p *Plugin) placeHold(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in HoldInput
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	var bad []sdk.FieldError
	reason := trimmed(&bad, "reason", in.Reason, true)
	subject := strings.TrimSpace(in.SubjectID)
	switch in.Kind {
	case sdk.HoldTenant:
		if subject != "" {
			bad = append(bad, sdk.FieldError{Field: "subject_id", Message: "a tenant hold covers the whole institution: it takes no subject_id"})
		}
	case sdk.HoldPerson:
		id, ok := sdk.NormalizeUUID(subject)
		if !ok {
			bad = append(bad, sdk.FieldError{Field: "subject_id", Message: "a person hold needs the person's user ID (a UUID)"})
		}
		subject = id
	default:
		if subject == "" {
			bad = append(bad, sdk.FieldError{Field: "subject_id", Message: fmt.Sprintf("a %s hold needs the ID of what it covers", in.Kind)})
		}
	}
	if len(bad) > 0 {
		return nil, sdk.Invalid(bad...)
	}
	if in.Kind != sdk.HoldTenant && in.Kind != sdk.HoldPerson {
		infos, err := req.Host().RetentionClasses(ctx, req.Tenant())
		if err != nil {
			return nil, err
		}
		known := []string{sdk.HoldTenant, sdk.HoldPerson}
		for _, i := range infos {
			for _, k := range i.HoldKinds {
				if !slices.Contains(known, k) {
					known = append(known, k)
				}
			}
		}
		if !slices.Contains(known, in.Kind) {
			return nil, sdk.Invalid(sdk.FieldError{Field: "kind", Message: fmt.Sprintf("no plugin enabled here declares holds of kind %q (known: %s)", in.Kind, strings.Join(known, ", "))})
		}
	}
	var sub *string
	if subject != "" {
		sub = &subject
	}
	var h Hold
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		// Never while an execution runs: it read the holds when it
		// started, and would delete what this hold covers.
		var free bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock_shared(`+retentionLockKey+`)`).Scan(&free); err != nil {
			return err
		}
		if !free {
			return sdk.Errorf(sdk.ErrConflict, "a retention execution is running for the institution: place the hold once it has ended (GET .../retention/executions)").WithCode("retention-running")
		}
		var err error
		h, err = scanHold(tx.QueryRow(ctx, `INSERT INTO legal_holds (kind, subject_id, reason, created_by) VALUES ($1, $2, $3, $4) RETURNING `+holdColumns,
			in.Kind, sub, reason, actor(req.Principal)))
		return err
	})
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.retention.hold.place", "governance_legal_hold", h.ID, map[string]any{"kind": h.Kind})
	return sdk.JSON(http.StatusCreated, h)
}

func (p *Plugin) releaseHold(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("hold_id")
	if err != nil {
		return nil, err
	}
	var h Hold
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		var err error
		if h, err = scanHold(tx.QueryRow(ctx, `SELECT `+holdColumns+` FROM legal_holds WHERE id = $1 FOR UPDATE`, id)); err != nil {
			return err
		}
		if h.ReleasedAt != nil {
			return sdk.Errorf(sdk.ErrConflict, "legal hold %s was released already", id).WithCode("hold-released")
		}
		h, err = scanHold(tx.QueryRow(ctx, `UPDATE legal_holds SET released_at = now(), released_by = $2 WHERE id = $1 RETURNING `+holdColumns, id, actor(req.Principal)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no legal hold %s in this institution", id)
	}
	if err != nil {
		return nil, err
	}
	p.audit(ctx, req, req.Principal, req.RequestID, "governance.retention.hold.release", "governance_legal_hold", h.ID, map[string]any{"kind": h.Kind})
	return sdk.JSON(http.StatusOK, h)
}
