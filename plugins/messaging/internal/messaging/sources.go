package messaging

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The events that notify someone, and the spaces the courses plugin's
// enrolments fill. Each handler works in ev.Tx, which records the event's
// ID in the plugin's inbox: a redelivered event changes nothing, and the
// notifications' dedupe keys (event ID and person) say the same twice.

// Event types of other plugins.
const (
	EventCoursePublished    = "courses.course.published.v1"
	EventEnrolmentCreated   = "courses.enrolment.created.v1"
	EventEnrolmentPromoted  = "courses.enrolment.promoted.v1"
	EventEnrolmentWithdrawn = "courses.enrolment.withdrawn.v1"
	EventSubmissionGraded   = "courses.submission.graded.v1"
	EventCertificateIssued  = "courses.certificate.issued.v1"
	EventOrderPaid          = "commerce.order.paid.v1"
	EventOrderRefunded      = "commerce.order.refunded.v1"
	EventPaymentFailed      = "commerce.invoice.payment_failed.v1"
	EventTenantCreated      = "tenancy.tenant.created.v1"
)

func needTenant(ev *sdk.Event) error {
	if ev.TenantID == "" {
		return fmt.Errorf("event %s (%s) names no institution", ev.ID, ev.Type)
	}
	return nil
}

func needUUID(ev *sdk.Event, field, v string) error {
	if !sdk.IsUUID(v) {
		return fmt.Errorf("event %s (%s): %s %q is not a UUID", ev.ID, ev.Type, field, v)
	}
	return nil
}

// handle runs fn in the event's transaction with a notifier, and flushes
// what fn noted.
func (p *Plugin) handle(ctx context.Context, ev *sdk.Event, fn func(tx pgx.Tx, n *notifier) error) error {
	cfg, err := p.config(ctx, ev)
	if err != nil {
		return err
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		n := &notifier{p: p, scope: ev, tx: tx, cfg: cfg}
		if err := fn(tx, n); err != nil {
			return err
		}
		return n.flush(ctx)
	})
}

// courseTitle is the title the course space has (courses.course.published.v1).
func courseTitle(ctx context.Context, tx pgx.Tx, courseID string) string {
	var t string
	if err := tx.QueryRow(ctx, `SELECT title FROM spaces WHERE kind = 'course' AND course_id = $1`, courseID).Scan(&t); err != nil || t == "Course" {
		return "your course"
	}
	return t
}

// coursePublished names the course's spaces after the course.
func (p *Plugin) coursePublished(ctx context.Context, ev *sdk.Event) error {
	var d struct {
		CourseID string `json:"course_id"`
		Title    string `json:"title"`
	}
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := errors.Join(needTenant(ev), needUUID(ev, "course_id", d.CourseID)); err != nil {
		return err
	}
	title := truncate(d.Title, 180)
	if title == "" {
		return nil
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error {
		if _, _, err := p.ensureCourseSpace(ctx, tx, ev.TenantID, d.CourseID, ""); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE spaces SET title = $2 WHERE kind = 'course' AND course_id = $1`, d.CourseID, title); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE spaces SET title = $2 WHERE kind = 'cohort' AND course_id = $1 AND title LIKE '% · cohort'`, d.CourseID, cohortTitle(title))
		return err
	})
}

type enrolmentData struct {
	EnrolmentID string `json:"enrolment_id"`
	CourseID    string `json:"course_id"`
	CohortID    string `json:"cohort_id"`
	UserID      string `json:"user_id"`
	Status      string `json:"status"`
	Source      string `json:"source"`
}

// enrolmentChanged keeps the course's and cohort's spaces in step with
// the courses plugin's enrolments (an active or completed enrolment is a
// member; waitlisted and withdrawn are not), and tells the learner.
func (p *Plugin) enrolmentChanged(ctx context.Context, ev *sdk.Event) error {
	var d enrolmentData
	if err := ev.Decode(&d); err != nil {
		return err
	}
	errs := []error{needTenant(ev), needUUID(ev, "course_id", d.CourseID), needUUID(ev, "user_id", d.UserID)}
	if d.CohortID != "" {
		errs = append(errs, needUUID(ev, "cohort_id", d.CohortID))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return p.handle(ctx, ev, func(tx pgx.Tx, n *notifier) error {
		course, cohort, err := p.ensureCourseSpace(ctx, tx, ev.TenantID, d.CourseID, d.CohortID)
		if err != nil {
			return err
		}
		spaces := []string{course}
		if cohort != "" {
			spaces = append(spaces, cohort)
		}
		member := d.Status == "active" || d.Status == "completed"
		if ev.Type == EventEnrolmentWithdrawn {
			member = false
		}
		for _, s := range spaces {
			if member {
				_, err = tx.Exec(ctx, `
					INSERT INTO space_members (tenant_id, space_id, user_id, enrolled, added_at) VALUES ($1, $2, $3, true, $4)
					ON CONFLICT (tenant_id, space_id, user_id) DO UPDATE SET enrolled = true`, ev.TenantID, s, d.UserID, p.now())
			} else {
				_, err = tx.Exec(ctx, `DELETE FROM space_members WHERE space_id = $1 AND user_id = $2 AND NOT (manual OR moderator)`, s, d.UserID)
				if err == nil {
					_, err = tx.Exec(ctx, `UPDATE space_members SET enrolled = false WHERE space_id = $1 AND user_id = $2`, s, d.UserID)
				}
			}
			if err != nil {
				return err
			}
		}
		title := courseTitle(ctx, tx, d.CourseID)
		link := "/courses/" + d.CourseID
		x := note{Recipient: d.UserID, Category: CatEnrolment, Link: link, EventID: ev.ID, Dedupe: "event:" + ev.ID + ":" + d.UserID,
			Data: map[string]any{"course_id": d.CourseID, "enrolment_id": d.EnrolmentID, "space_id": course}}
		switch {
		case ev.Type == EventEnrolmentPromoted:
			x.Kind, x.Title, x.Body = "courses.enrolment.promoted", "A seat opened: you are enrolled in "+title, "You were on the waitlist, and a seat is now yours. The course space is open to you."
		case ev.Type == EventEnrolmentCreated && d.Status == "waitlisted":
			x.Kind, x.Title, x.Body = "courses.enrolment.waitlisted", "You are on the waitlist for "+title, "The cohort is full. You will get a seat, and a message, as soon as one frees up."
		case ev.Type == EventEnrolmentCreated && d.Source != "self":
			x.Kind, x.Title, x.Body = "courses.enrolment.created", "You are enrolled in "+title, "You have been enrolled. The course and its space are open to you."
		default:
			return nil // one's own enrolment or withdrawal: nothing to tell
		}
		n.add(x)
		return nil
	})
}

// submissionGraded tells the learner their grade.
func (p *Plugin) submissionGraded(ctx context.Context, ev *sdk.Event) error {
	var d struct {
		SubmissionID string `json:"submission_id"`
		AssignmentID string `json:"assignment_id"`
		CourseID     string `json:"course_id"`
		UserID       string `json:"user_id"`
		Percent      int    `json:"percent"`
		Passed       bool   `json:"passed"`
		Regrade      bool   `json:"regrade"`
	}
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := errors.Join(needTenant(ev), needUUID(ev, "user_id", d.UserID), needUUID(ev, "submission_id", d.SubmissionID)); err != nil {
		return err
	}
	return p.handle(ctx, ev, func(tx pgx.Tx, n *notifier) error {
		title := courseTitle(ctx, tx, d.CourseID)
		x := note{Recipient: d.UserID, Category: CatGrades, Kind: "courses.submission.graded", EventID: ev.ID,
			Dedupe: "event:" + ev.ID + ":" + d.UserID, Link: "/submissions/" + d.SubmissionID,
			Data: map[string]any{"submission_id": d.SubmissionID, "course_id": d.CourseID, "percent": d.Percent, "passed": d.Passed}}
		verdict := "did not pass yet"
		if d.Passed {
			verdict = "passed"
		}
		x.Title = fmt.Sprintf("Your work in %s was graded: %d%%", title, d.Percent)
		x.Body = fmt.Sprintf("Your submission %s with %d%%. The grader's feedback is with it.", verdict, d.Percent)
		if d.Regrade {
			x.Kind = "courses.appeal.upheld"
			x.Title = fmt.Sprintf("Your appeal was upheld: %d%% in %s", d.Percent, title)
			x.Body = fmt.Sprintf("Your work was graded again: %d%% (%s).", d.Percent, verdict)
		}
		n.add(x)
		return nil
	})
}

// certificateIssued tells the learner their certificate is ready.
func (p *Plugin) certificateIssued(ctx context.Context, ev *sdk.Event) error {
	var d struct {
		CertificateID string `json:"certificate_id"`
		CourseID      string `json:"course_id"`
		UserID        string `json:"user_id"`
	}
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := errors.Join(needTenant(ev), needUUID(ev, "user_id", d.UserID), needUUID(ev, "certificate_id", d.CertificateID)); err != nil {
		return err
	}
	return p.handle(ctx, ev, func(tx pgx.Tx, n *notifier) error {
		title := courseTitle(ctx, tx, d.CourseID)
		n.add(note{Recipient: d.UserID, Category: CatCertificates, Kind: "courses.certificate.issued", EventID: ev.ID,
			Dedupe: "event:" + ev.ID + ":" + d.UserID, Link: "/certificates/" + d.CertificateID,
			Title: "Your certificate for " + title + " is ready", Body: "Congratulations on completing the course. Your certificate can be verified by anyone with its link.",
			Data: map[string]any{"certificate_id": d.CertificateID, "course_id": d.CourseID}})
		return nil
	})
}

// orderEvent tells a buyer about their order or invoice (the commerce
// plugin's events, docs/commerce.md: order_id or invoice_id, user_id,
// currency, and amount_total, amount_refunded or amount_due in minor
// units; other fields are ignored). An invoice without a user_id (a
// subscription Stripe knows but no account) notifies no one.
func (p *Plugin) orderEvent(ctx context.Context, ev *sdk.Event) error {
	var d struct {
		OrderID        string `json:"order_id"`
		InvoiceID      string `json:"invoice_id"`
		UserID         string `json:"user_id"`
		Currency       string `json:"currency"`
		AmountTotal    *int64 `json:"amount_total"`
		AmountRefunded *int64 `json:"amount_refunded"`
		AmountDue      *int64 `json:"amount_due"`
	}
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := needTenant(ev); err != nil {
		return err
	}
	if d.UserID == "" && ev.Type == EventPaymentFailed {
		return nil
	}
	if err := needUUID(ev, "user_id", d.UserID); err != nil {
		return err
	}
	return p.handle(ctx, ev, func(tx pgx.Tx, n *notifier) error {
		x := note{Recipient: d.UserID, Category: CatBilling, EventID: ev.ID, Dedupe: "event:" + ev.ID + ":" + d.UserID}
		switch ev.Type {
		case EventOrderPaid:
			x.Kind, x.Title = "commerce.order.paid", "Payment received"+money(d.AmountTotal, d.Currency)
			x.Body, x.Link, x.Data = "Thank you: your order is paid. What you bought is open to you.", "/orders/"+d.OrderID, map[string]any{"order_id": d.OrderID}
		case EventOrderRefunded:
			x.Kind, x.Title = "commerce.order.refunded", "Refund issued"+money(d.AmountRefunded, d.Currency)
			x.Body, x.Link, x.Data = "Your order was refunded. What it gave you access to has ended.", "/orders/"+d.OrderID, map[string]any{"order_id": d.OrderID}
		default:
			x.Kind, x.Title = "commerce.invoice.payment_failed", "Your payment did not go through"+money(d.AmountDue, d.Currency)
			x.Body = "We could not take the payment for your subscription's invoice. Please check your payment details."
			x.Link, x.Data = "/billing", map[string]any{"invoice_id": d.InvoiceID}
		}
		n.add(x)
		return nil
	})
}

// zeroDecimal are the currencies whose minor unit is the unit (Stripe's list).
var zeroDecimal = map[string]bool{"BIF": true, "CLP": true, "DJF": true, "GNF": true, "JPY": true, "KMF": true, "KRW": true, "MGA": true,
	"PYG": true, "RWF": true, "UGX": true, "VND": true, "VUV": true, "XAF": true, "XOF": true, "XPF": true}

// money is " (12.50 EUR)" for an amount in minor units; "" without one.
func money(minor *int64, currency string) string {
	if minor == nil || currency == "" {
		return ""
	}
	cur := strings.ToUpper(currency)
	if zeroDecimal[cur] {
		return fmt.Sprintf(" (%d %s)", *minor, cur)
	}
	sign := ""
	v := *minor
	if v < 0 {
		sign, v = "-", -v
	}
	return fmt.Sprintf(" (%s%d.%02d %s)", sign, v/100, v%100, cur)
}

// tenantCreated remembers an institution's name.
func (p *Plugin) tenantCreated(ctx context.Context, ev *sdk.Event) error {
	var d struct {
		TenantID string `json:"tenant_id"`
		Slug     string `json:"slug"`
		Name     string `json:"name"`
	}
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := needTenant(ev); err != nil {
		return err
	}
	return ev.Tx(ctx, func(tx pgx.Tx) error { return rememberInstitution(ctx, tx, ev.TenantID, d.Slug, d.Name) })
}

func rememberInstitution(ctx context.Context, tx pgx.Tx, tenant, slug, name string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO institutions (tenant_id, slug, name) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET slug = excluded.slug, name = excluded.name, updated_at = now()`,
		tenant, truncate(slug, 100), truncate(name, 200))
	return err
}

// announcementPublished notifies every member of the space (its author
// aside) of an announcement, once each: messaging.announcement.published.v1
// is the plugin's own event, so that a space of thousands is notified in
// its own transaction rather than the author's request.
func (p *Plugin) announcementPublished(ctx context.Context, ev *sdk.Event) error {
	var d AnnouncementPublished
	if err := ev.Decode(&d); err != nil {
		return err
	}
	if err := errors.Join(needTenant(ev), needUUID(ev, "post_id", d.PostID), needUUID(ev, "space_id", d.SpaceID)); err != nil {
		return err
	}
	return p.handle(ctx, ev, func(tx pgx.Tx, n *notifier) error {
		var sp Space
		if err := scanSpace(tx.QueryRow(ctx, `SELECT `+spaceColumns+` FROM spaces s WHERE s.id = $1`, d.SpaceID), &sp); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		}
		var text, html string
		var gone bool
		if err := tx.QueryRow(ctx, `SELECT body_text, body, hidden_at IS NOT NULL OR deleted_at IS NOT NULL FROM posts WHERE id = $1`, d.PostID).Scan(&text, &html, &gone); err != nil {
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			return err
		}
		if gone {
			return nil
		}
		members, err := spaceMemberIDs(ctx, tx, sp)
		if err != nil {
			return err
		}
		author := displayName(ctx, tx, d.AuthorID)
		first, _, _ := strings.Cut(text, "\n")
		for _, uid := range members {
			if uid == d.AuthorID {
				continue
			}
			n.add(note{Recipient: uid, Category: CatAnnouncements, Kind: "messaging.announcement", PostID: d.PostID, Actor: d.AuthorID,
				Title: fmt.Sprintf("%s: %s", sp.Title, truncate(first, 120)), Body: truncate(text, 1000) + "\n\n— " + author,
				Link: postLink(sp.ID, d.PostID), Dedupe: "announcement:" + d.PostID + ":" + uid,
				Data: map[string]any{"post_id": d.PostID, "space_id": sp.ID, "html": html}})
			if len(n.notes) >= 500 {
				if err := n.flush(ctx); err != nil {
					return err
				}
			}
		}
		return nil
	})
}
