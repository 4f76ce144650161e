package messaging

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The directory: who can be reached at which address, and who belongs to
// which institution. The kernel's events fill it; the plugin never asks
// the kernel for an address (the protocol has no call for it, and a copy
// taken from the events keeps sending off the kernel's request path).
//
// people is platform-wide: the identity events carry a person's address
// without an institution. Its institutions column lists where they are a
// member; a person's erasure in one institution removes that one, and the
// row (their address and name) goes with the last. Addresses do not
// change in the kernel (there is no route for it); a later identity event
// carrying one refreshes the row all the same.

// Kernel event types the directory follows.
const (
	EventUserCreated        = "identity.user.created.v1"
	EventPasswordReset      = "identity.password_reset.requested.v1"
	EventVerification       = "identity.email_verification.requested.v1"
	EventMFALocked          = "identity.mfa.locked.v1"
	EventPasswordChanged    = "identity.password.changed.v1"
	EventEmailVerified      = "identity.email.verified.v1"
	EventInvitationCreated  = "tenancy.invitation.created.v1"
	EventMemberJoined       = "tenancy.member.joined.v1"
	EventMemberRolesChanged = "tenancy.member.roles_changed.v1"
	EventMemberRemoved      = "tenancy.member.removed.v1"
)

// identityData is what the identity events share.
type identityData struct {
	UserID      string `json:"user_id"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
}

func (d identityData) check(ev *sdk.Event) error {
	if !sdk.IsUUID(d.UserID) {
		return fmt.Errorf("event %s (%s): user_id %q is not a UUID", ev.ID, ev.Type, d.UserID)
	}
	if !strings.Contains(d.Email, "@") {
		return fmt.Errorf("event %s (%s): email is missing", ev.ID, ev.Type)
	}
	return nil
}

// remember writes a person's address and name.
func remember(ctx context.Context, tx pgx.Tx, d identityData) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO people (user_id, email, display_name) VALUES ($1, $2, $3)
		ON CONFLICT (user_id) DO UPDATE SET email = excluded.email,
			display_name = CASE WHEN excluded.display_name = '' THEN people.display_name ELSE excluded.display_name END,
			-- another address is not proven by the old one's proof
			email_verified = people.email_verified AND lower(people.email) = lower(excluded.email),
			updated_at = now()`, d.UserID, strings.TrimSpace(d.Email), strings.TrimSpace(d.DisplayName))
	return err
}

// userCreated handles identity.user.created.v1 (a platform event).
func (p *Plugin) userCreated(ctx context.Context, ev *sdk.Event) error {
	var d identityData
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := d.check(ev); err != nil {
		return err
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error { return remember(ctx, tx, d) })
}

// emailVerified handles identity.email.verified.v1: the address is its
// owner's, so email may go to it. The event may arrive before the one
// that brought the address: it carries the address itself.
func (p *Plugin) emailVerified(ctx context.Context, ev *sdk.Event) error {
	var d identityData
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := d.check(ev); err != nil {
		return err
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO people (user_id, email, email_verified) VALUES ($1, $2, true)
			ON CONFLICT (user_id) DO UPDATE SET email = excluded.email, email_verified = true, updated_at = now()`,
			d.UserID, strings.TrimSpace(d.Email))
		return err
	})
}

type memberData struct {
	UserID string   `json:"user_id"`
	Roles  []string `json:"roles"`
}

func decodeMember(ev *sdk.Event) (memberData, error) {
	var d memberData
	if err := ev.Decode(&d); err != nil {
		return d, err
	}
	if ev.TenantID == "" {
		return d, fmt.Errorf("event %s (%s) names no institution", ev.ID, ev.Type)
	}
	if !sdk.IsUUID(d.UserID) {
		return d, fmt.Errorf("event %s (%s): user_id %q is not a UUID", ev.ID, ev.Type, d.UserID)
	}
	if d.Roles == nil {
		d.Roles = []string{}
	}
	return d, nil
}

// memberJoined handles tenancy.member.joined.v1 and roles_changed.v1. A
// change of roles also tells the person: it is a security notification
// (someone may have made them an admin, or taken it away).
func (p *Plugin) memberJoined(ctx context.Context, ev *sdk.Event) error {
	d, err := decodeMember(ev)
	if err != nil {
		return err
	}
	return p.handle(ctx, ev, func(tx pgx.Tx, n *notifier) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO members (tenant_id, user_id, roles, active, joined_at) VALUES ($1, $2, $3, true, $4)
			ON CONFLICT (tenant_id, user_id) DO UPDATE SET roles = excluded.roles, active = true`,
			ev.TenantID, d.UserID, d.Roles, p.now()); err != nil {
			return err
		}
		if err := addInstitution(ctx, tx, d.UserID, ev.TenantID); err != nil {
			return err
		}
		if ev.Type == EventMemberRolesChanged {
			roles := strings.Join(d.Roles, ", ")
			n.add(note{Recipient: d.UserID, Category: CatSecurity, Kind: "tenancy.member.roles_changed", EventID: ev.ID,
				Dedupe: "event:" + ev.ID + ":" + d.UserID, Link: "/settings/account",
				Title: "Your roles changed: " + roles,
				Body:  "Your roles in the institution are now: " + roles + ". If you did not expect this, tell an administrator.",
				Data:  map[string]any{"roles": d.Roles}})
		}
		return nil
	})
}

// addInstitution notes that a person belongs to an institution. A person
// the identity events have not reached yet gets a row without an address,
// which the event that carries it fills (the two arrive in any order).
func addInstitution(ctx context.Context, tx pgx.Tx, userID, tenantID string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO people (user_id, email, institutions) VALUES ($1, '', ARRAY[$2::uuid])
		ON CONFLICT (user_id) DO UPDATE SET institutions =
			CASE WHEN $2::uuid = ANY (people.institutions) THEN people.institutions ELSE people.institutions || $2::uuid END`,
		userID, tenantID)
	return err
}

// memberRemoved handles tenancy.member.removed.v1: the person leaves every
// space of the institution and gets nothing more from it; their notifications
// and settings stay until they are erased (they may come back).
func (p *Plugin) memberRemoved(ctx context.Context, ev *sdk.Event) error {
	d, err := decodeMember(ev)
	if err != nil {
		return err
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE members SET active = false WHERE user_id = $1`, d.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM space_members WHERE user_id = $1`, d.UserID); err != nil {
			return err
		}
		// What was still waiting for them is not sent.
		_, err := tx.Exec(ctx, `
			UPDATE deliveries d SET status = 'suppressed', reason_code = 'not_a_member', reason = 'you left the institution before it was sent',
				updated_at = $2, claim_id = NULL
			FROM notifications n
			WHERE n.tenant_id = d.tenant_id AND n.id = d.notification_id AND n.recipient_id = $1
			  AND d.status IN ('pending', 'deferred', 'throttled', 'retrying', 'digest')`, d.UserID, p.now())
		return err
	})
}

// contact is how to reach a person.
type contact struct {
	UserID, Email, Name string
	Active              bool // an active member of the institution
}

// contacts reads the address and membership of people of the transaction's
// institution.
func contacts(ctx context.Context, tx pgx.Tx, userIDs []string) (map[string]contact, error) {
	rows, err := tx.Query(ctx, `
		SELECT u.id::text, coalesce(p.email, ''), coalesce(p.display_name, ''), coalesce(m.active, false)
		FROM unnest($1::uuid[]) AS u(id)
		LEFT JOIN people p ON p.user_id = u.id
		LEFT JOIN members m ON m.user_id = u.id`, userIDs)
	if err != nil {
		return nil, err
	}
	out := map[string]contact{}
	var c contact
	_, err = pgx.ForEachRow(rows, []any{&c.UserID, &c.Email, &c.Name, &c.Active}, func() error {
		out[c.UserID] = c
		return nil
	})
	return out, err
}

// displayName is a person's name for messages, from the directory.
func displayName(ctx context.Context, tx pgx.Tx, userID string) string {
	var name string
	if err := tx.QueryRow(ctx, `SELECT display_name FROM people WHERE user_id = $1`, userID).Scan(&name); err != nil || name == "" {
		return "Someone"
	}
	return name
}

// activeMembers lists the active members of the transaction's institution.
func activeMembers(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT user_id::text FROM members WHERE active ORDER BY user_id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// hasRole reports whether a member of the transaction's institution holds
// one of roles (from the directory, as of the last membership event).
func hasRole(ctx context.Context, tx pgx.Tx, userID string, roles ...string) (bool, error) {
	var have []string
	err := tx.QueryRow(ctx, `SELECT roles FROM members WHERE user_id = $1 AND active`, userID).Scan(&have)
	if err == pgx.ErrNoRows {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, r := range roles {
		if slices.Contains(have, r) {
			return true, nil
		}
	}
	return false, nil
}
