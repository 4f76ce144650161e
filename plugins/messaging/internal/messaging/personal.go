package messaging

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The personal data messaging holds (docs/messaging.md, "Personal data").
// The SDK exports and erases it from these classes when the kernel asks.
//
// The decisions: what a person posted and commented stays in its thread
// (others answered it) under a pseudonym, without its text; their
// reactions and votes stay under the pseudonym so counts still add up;
// their notifications, ledger, preferences, settings, devices, mentions
// and memberships are deleted. The address book (people, platform-wide)
// loses the institution, and the person's address and name go with the
// last institution, with the record of platform mail sent to them.

const keptInThread = "As long as the space exists; when its author is erased, kept under a pseudonym without its text, so the thread still reads."

func (p *Plugin) personalData() []sdk.DataClass {
	deleted := func(name, table, subject, purpose string, cols ...sdk.PersonalColumn) sdk.DataClass {
		return sdk.DataClass{Name: name, Table: table, Subject: subject, OnErase: sdk.Delete, Purpose: purpose,
			Retention: "Until the person is erased, or leaves and is erased.", Columns: cols}
	}
	text := func(name string) sdk.PersonalColumn {
		return sdk.PersonalColumn{Name: name, Kind: sdk.FreeText, Description: "What the person wrote."}
	}
	return []sdk.DataClass{
		{
			Name: "people", Table: "people", Subject: "user_id", OnErase: sdk.Delete, Purpose: "The address and name to reach a person at, from the kernel's identity events.",
			Retention: "While the person belongs to an institution that enabled messaging; erased with the last one.",
			Columns: []sdk.PersonalColumn{
				{Name: "email", Kind: sdk.Email, Description: "Their address."},
				{Name: "display_name", Kind: sdk.PersonName, Description: "Their name."},
				{Name: "email_verified", Kind: sdk.OtherPersonal, Description: "Whether the kernel told us their address is proven."},
			},
			NotPersonal: []string{"institutions"},
			Export:      p.exportPerson, Erase: p.erasePerson,
		},
		{
			Name: "platform_mail", Table: "platform_deliveries", Subject: "user_id", OnErase: sdk.Delete,
			Purpose:   "The record of account mail sent to the person (password resets, address verification, sign-in alerts): not its token or address.",
			Retention: "While the person belongs to an institution that enabled messaging; erased with the last one.",
			Columns:   []sdk.PersonalColumn{{Name: "reason", Kind: sdk.FreeText, Description: "What the mail server answered."}},
			Export:    p.exportPlatformMail, Erase: p.erasePlatformMail,
		},
		withNotPersonal(deleted("notifications", "notifications", "recipient_id", "Notifications to the person and the record of their delivery (the ledger goes with them).",
			sdk.PersonalColumn{Name: "title", Kind: sdk.FreeText, Description: "What the notification said."},
			sdk.PersonalColumn{Name: "body", Kind: sdk.FreeText, Description: "What the notification said."},
			sdk.PersonalColumn{Name: "data", Kind: sdk.OtherPersonal, Description: "The IDs it is about."},
			sdk.PersonalColumn{Name: "actor_id", Kind: sdk.UserRef, Description: "Who caused it (a mention's author)."}),
			"link", "dedupe_key"), // a path of the app; a key made of IDs
		deleted("inbox_counters", "inbox_counters", "user_id", "The position of the person's in-app inbox."),
		deleted("preferences", "preferences", "user_id", "What the person chose to get, per category and channel."),
		withNotPersonal(deleted("person_settings", "person_settings", "user_id", "The person's time zone, quiet hours, digest hour, and what bounces said of their address.",
			sdk.PersonalColumn{Name: "time_zone", Kind: sdk.OtherPersonal, Description: "Their time zone."},
			sdk.PersonalColumn{Name: "email_status_reason", Kind: sdk.FreeText, Description: "What the mail server said of their address."},
			sdk.PersonalColumn{Name: "email_status", Kind: sdk.OtherPersonal, Description: "Whether their address bounced or complained."}), "email_status_at"),
		deleted("devices", "devices", "user_id", "The person's web push subscriptions.",
			sdk.PersonalColumn{Name: "endpoint", Kind: sdk.Identifier, Description: "The push service URL of their browser."},
			sdk.PersonalColumn{Name: "p256dh", Kind: sdk.Identifier, Description: "Their browser's key."},
			sdk.PersonalColumn{Name: "auth", Kind: sdk.Identifier, Description: "Their browser's secret."},
			sdk.PersonalColumn{Name: "user_agent", Kind: sdk.Network, Description: "Their browser."}),
		deleted("members", "members", "user_id", "The person's membership and roles, as the kernel's events said.",
			sdk.PersonalColumn{Name: "roles", Kind: sdk.OtherPersonal, Description: "Their roles."}),
		deleted("space_members", "space_members", "user_id", "The course and cohort spaces the person belongs to or moderates.",
			sdk.PersonalColumn{Name: "added_by", Kind: sdk.UserRef, Description: "Who added them."}),
		deleted("mentions", "mentions", "user_id", "Posts and comments that mention the person."),
		deleted("feed_snapshots", "feed_snapshots", "user_id", "The order of a ranked feed the person paged through (an hour)."),
		{
			Name: "revisions", Table: "revisions", Subject: "edited_by", OnErase: sdk.Anonymise,
			Purpose: "Earlier texts of the person's posts and comments.", Retention: keptInThread,
			Columns: []sdk.PersonalColumn{text("body")},
		},
		{
			Name: "comments", Table: "comments", Subject: "author_id", OnErase: sdk.Anonymise,
			Purpose: "The person's comments.", Retention: keptInThread,
			Columns: []sdk.PersonalColumn{text("body"), text("body_text"),
				{Name: "hidden_by", Kind: sdk.UserRef, Description: "The moderator who hid it."},
				{Name: "hidden_reason", Kind: sdk.FreeText, Description: "Why a moderator hid it."}},
		},
		{
			Name: "posts", Table: "posts", Subject: "author_id", OnErase: sdk.Anonymise,
			Purpose: "The person's posts and announcements.", Retention: keptInThread,
			Columns: []sdk.PersonalColumn{text("body"), text("body_text"),
				{Name: "hidden_by", Kind: sdk.UserRef, Description: "The moderator who hid it."},
				{Name: "hidden_reason", Kind: sdk.FreeText, Description: "Why a moderator hid it."}},
		},
		{
			Name: "reactions", Table: "reactions", Subject: "user_id", OnErase: sdk.Keep,
			NotPersonal: []string{"emoji"},
			Purpose:     "The person's reactions.", Retention: "Kept under a pseudonym when the person is erased, so the counts add up.",
		},
		{
			Name: "poll_votes", Table: "poll_votes", Subject: "user_id", OnErase: sdk.Keep,
			Purpose: "The person's votes in polls.", Retention: "Kept under a pseudonym when the person is erased, so the results add up.",
		},
		{
			Name: "attachments", Table: "attachments", Subject: "uploader_id", OnErase: sdk.Anonymise,
			Purpose: "Files the person attached to posts.", Retention: "With the post; the file is deleted when the person is erased.",
			Columns: []sdk.PersonalColumn{
				{Name: "filename", Kind: sdk.FreeText, Description: "The file's name."},
				{Name: "object_key", Kind: sdk.Identifier, Description: "Where the file is stored (it holds the uploader's ID)."},
			},
			Objects: "attachments/{user_id}/",
		},
		{
			Name: "reports", Table: "reports", Subject: "reporter_id", OnErase: sdk.Anonymise,
			Purpose: "Reports the person made of posts and comments.", Retention: "Kept for the moderation record under a pseudonym, without the reason.",
			Columns: []sdk.PersonalColumn{{Name: "reason", Kind: sdk.FreeText, Description: "Why they reported it."},
				{Name: "resolved_by", Kind: sdk.UserRef, Description: "The moderator who resolved it."}},
		},
	}
}

// PersonExport is the person's entry of the address book.
type PersonExport struct {
	UserID      string    `json:"user_id"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name"`
	Verified    bool      `json:"email_verified"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// PlatformMailExport is a record of platform mail sent to the person.
type PlatformMailExport struct {
	EventID   string    `json:"event_id"`
	Kind      string    `json:"kind"`
	Status    string    `json:"status"`
	Reason    string    `json:"reason"`
	CreatedAt time.Time `json:"created_at"`
}

// exportPerson exports the person's address book entry (when they belong
// to the institution) and the platform mail sent to them.
func (p *Plugin) exportPerson(ctx context.Context, x *sdk.PersonalExport) error {
	return x.Tx(ctx, func(tx pgx.Tx) error {
		var pe PersonExport
		err := tx.QueryRow(ctx, `SELECT user_id::text, email, display_name, email_verified, updated_at FROM people WHERE user_id = $1 AND $2::uuid = ANY (institutions)`,
			x.UserID, x.TenantID).Scan(&pe.UserID, &pe.Email, &pe.DisplayName, &pe.Verified, &pe.UpdatedAt)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		return x.Row(pe)
	})
}

// exportPlatformMail exports the record of platform mail sent to the
// person, when they belong to the institution.
func (p *Plugin) exportPlatformMail(ctx context.Context, x *sdk.PersonalExport) error {
	return x.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT d.event_id::text, d.kind, d.status, d.reason, d.created_at FROM platform_deliveries d
			WHERE d.user_id = $1 AND EXISTS (SELECT 1 FROM people WHERE user_id = $1 AND $2::uuid = ANY (institutions))
			ORDER BY d.created_at, d.event_id`, x.UserID, x.TenantID)
		if err != nil {
			return err
		}
		mails, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (PlatformMailExport, error) {
			var m PlatformMailExport
			err := r.Scan(&m.EventID, &m.Kind, &m.Status, &m.Reason, &m.CreatedAt)
			return m, err
		})
		if err != nil {
			return err
		}
		for _, m := range mails {
			if err := x.Row(m); err != nil {
				return err
			}
		}
		return nil
	})
}

// erasePlatformMail deletes the record once the person's address book
// entry is gone (people, erased before it, removes it with the last
// institution).
func (p *Plugin) erasePlatformMail(ctx context.Context, e *sdk.PersonalErasure) error {
	return e.Tx(ctx, func(tx pgx.Tx) error {
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM platform_deliveries WHERE user_id = $1
			AND NOT EXISTS (SELECT 1 FROM people WHERE user_id = $1 AND NOT ($2::uuid = ANY (institutions) AND cardinality(institutions) = 1))`,
			e.UserID, e.TenantID).Scan(&n); err != nil {
			return err
		}
		if n == 0 || e.DryRun {
			e.Deleted(n)
			return nil
		}
		if _, err := tx.Exec(ctx, `DELETE FROM platform_deliveries WHERE user_id = $1 AND NOT EXISTS (SELECT 1 FROM people WHERE user_id = $1)`, e.UserID); err != nil {
			return err
		}
		e.Deleted(n)
		return nil
	})
}

// erasePerson removes the institution from the person's address book
// entry; with the last one, the entry and the platform mail record go.
func (p *Plugin) erasePerson(ctx context.Context, e *sdk.PersonalErasure) error {
	return e.Tx(ctx, func(tx pgx.Tx) error {
		var inst []string
		err := tx.QueryRow(ctx, `SELECT institutions::text[] FROM people WHERE user_id = $1 AND $2::uuid = ANY (institutions)`, e.UserID, e.TenantID).Scan(&inst)
		if err == pgx.ErrNoRows {
			return nil
		}
		if err != nil {
			return err
		}
		if e.DryRun {
			e.Deleted(1)
			return nil
		}
		if len(inst) <= 1 {
			if _, err := tx.Exec(ctx, `DELETE FROM people WHERE user_id = $1`, e.UserID); err != nil {
				return err
			}
			e.Deleted(1)
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE people SET institutions = array_remove(institutions, $2::uuid) WHERE user_id = $1`, e.UserID, e.TenantID); err != nil {
			return err
		}
		e.Anonymised(1)
		return nil
	})
}

func withNotPersonal(dc sdk.DataClass, cols ...string) sdk.DataClass {
	dc.NotPersonal = append(dc.NotPersonal, cols...)
	return dc
}

var _ sdk.TenantEraser = (*Plugin)(nil)

// EraseTenant erases what of an institution has no tenant_id: the
// institution leaves each person's address book entry (the entry, and its
// platform mail record, go with the last one), its send windows and
// demand, and its name. The SDK then deletes every row with its
// tenant_id.
func (p *Plugin) EraseTenant(ctx context.Context, e *sdk.TenantErasure) error {
	return e.Tx(ctx, func(tx pgx.Tx) error {
		var last, shared, windows, demand, inst int64
		err := tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE cardinality(institutions) = 1), count(*) FILTER (WHERE cardinality(institutions) > 1)
			FROM people WHERE $1::uuid = ANY (institutions)`, e.TenantID).Scan(&last, &shared)
		if err == nil {
			err = tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM send_windows WHERE institution = $1), (SELECT count(*) FROM send_demand WHERE institution = $1),
				(SELECT count(*) FROM institutions WHERE tenant_id = $1)`, e.TenantID).Scan(&windows, &demand, &inst)
		}
		if err != nil {
			return err
		}
		if !e.DryRun {
			for _, q := range []string{
				`DELETE FROM platform_deliveries WHERE user_id IN (SELECT user_id FROM people WHERE institutions = ARRAY[$1::uuid])`,
				`DELETE FROM people WHERE institutions = ARRAY[$1::uuid]`,
				`UPDATE people SET institutions = array_remove(institutions, $1::uuid) WHERE $1::uuid = ANY (institutions)`,
				`DELETE FROM send_windows WHERE institution = $1`,
				`DELETE FROM send_demand WHERE institution = $1`,
			} {
				if _, err := tx.Exec(ctx, q, e.TenantID); err != nil {
					return err
				}
			}
		}
		e.Deleted("people", last)
		e.Deleted("send_windows", windows)
		e.Deleted("send_demand", demand)
		return nil
	})
}
