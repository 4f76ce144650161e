package messaging

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// The in-app inbox: the notifications delivered to a person in the app,
// numbered in the order they were delivered (seq), read or unread, and
// live as Server-Sent Events resumed from Last-Event-ID.

// InboxItem is a notification in a person's inbox.
type InboxItem struct {
	ID        string          `json:"id" format:"uuid"`
	Seq       int64           `json:"seq" doc:"The item's place in the person's inbox: the Server-Sent Event ID."`
	Category  string          `json:"category"`
	Kind      string          `json:"kind"`
	Title     string          `json:"title"`
	Body      string          `json:"body"`
	Link      string          `json:"link,omitempty" doc:"A path of the web app (or an absolute URL)."`
	Data      json.RawMessage `json:"data" doc:"What the notification is about (IDs)."`
	ActorID   string          `json:"actor_id,omitempty" format:"uuid"`
	Critical  bool            `json:"critical"`
	CreatedAt time.Time       `json:"created_at"`
	ReadAt    *time.Time      `json:"read_at,omitempty"`
}

// InboxQuery filters the inbox.
type InboxQuery struct {
	Unread   bool   `query:"unread" doc:"Only unread items."`
	Category string `query:"category" pattern:"^[a-z_]{1,40}$"`
}

// InboxSummary counts a person's unread items.
type InboxSummary struct {
	Unread  int   `json:"unread"`
	LastSeq int64 `json:"last_seq" doc:"The newest item's seq: a stream opened with it as Last-Event-ID sends only what comes after."`
}

// ReadAll is the answer of marking everything read.
type ReadAll struct {
	Marked int `json:"marked"`
}

func (p *Plugin) inboxRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "GET", Path: "/api/v1/notifications", Permission: PermNotificationRead, Summary: "One's in-app notifications, newest first",
			Query: InboxQuery{}, Paginated: true, Response: sdk.Page[InboxItem]{}, Handler: p.listInbox},
		{Method: "GET", Path: "/api/v1/notifications/summary", Permission: PermNotificationRead, Summary: "How many of one's notifications are unread",
			Response: InboxSummary{}, Handler: p.inboxSummary},
		{Method: "GET", Path: "/api/v1/notifications/stream", Permission: PermNotificationRead,
			Summary: "One's in-app notifications as they arrive (Server-Sent Events, event notification, ID seq); with Last-Event-ID, what came after it first",
			Stream:  p.stream},
		{Method: "POST", Path: "/api/v1/notifications/{notification_id}/read", Permission: PermNotificationRead, Summary: "Mark one of one's notifications read",
			Response: InboxItem{}, Handler: p.markRead},
		{Method: "POST", Path: "/api/v1/notifications/read-all", Permission: PermNotificationRead, Summary: "Mark all one's notifications read",
			Response: ReadAll{}, Handler: p.markAllRead},
	}
}

const inboxColumns = `n.id::text, n.inbox_seq, n.category, n.kind, n.title, n.body, n.link, n.data, coalesce(n.actor_id::text, ''), n.critical, n.created_at, n.read_at`

func collectInbox(rows pgx.Rows) ([]InboxItem, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (InboxItem, error) {
		var it InboxItem
		err := r.Scan(&it.ID, &it.Seq, &it.Category, &it.Kind, &it.Title, &it.Body, &it.Link, &it.Data, &it.ActorID, &it.Critical, &it.CreatedAt, &it.ReadAt)
		return it, err
	})
}

// inboxAfter reads a person's items after seq, oldest first.
func inboxAfter(ctx context.Context, tx pgx.Tx, userID string, seq int64, limit int) ([]InboxItem, error) {
	rows, err := tx.Query(ctx, `SELECT `+inboxColumns+` FROM notifications n
		WHERE n.recipient_id = $1 AND n.inbox_seq > $2 ORDER BY n.inbox_seq LIMIT $3`, userID, seq, limit)
	if err != nil {
		return nil, err
	}
	return collectInbox(rows)
}

// loadInboxItem is the hub's read of one delivered item.
func (p *Plugin) loadInboxItem(ctx context.Context, tenant, user string, seq int64) (*InboxItem, error) {
	var items []InboxItem
	err := p.env.DB.InTenant(ctx, tenant, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+inboxColumns+` FROM notifications n WHERE n.recipient_id = $1 AND n.inbox_seq = $2`, user, seq)
		if err != nil {
			return err
		}
		items, err = collectInbox(rows)
		return err
	})
	if err != nil || len(items) == 0 {
		return nil, err
	}
	return &items[0], nil
}

func (p *Plugin) listInbox(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[InboxQuery](req)
	if err != nil {
		return nil, err
	}
	pg, err := req.Page()
	if err != nil {
		return nil, err
	}
	before := int64(-1)
	if len(pg.After) > 0 {
		if len(pg.After) != 1 {
			return nil, invalid("invalid", "cursor", "is not a cursor of this list")
		}
		if before, err = strconv.ParseInt(pg.After[0], 10, 64); err != nil {
			return nil, invalid("invalid", "cursor", "is not a cursor of this list")
		}
	}
	var items []InboxItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+inboxColumns+` FROM notifications n
			WHERE n.recipient_id = $1 AND n.inbox_seq IS NOT NULL AND ($2 < 0 OR n.inbox_seq < $2)
			  AND (NOT $3 OR n.read_at IS NULL) AND ($4 = '' OR n.category = $4)
			ORDER BY n.inbox_seq DESC LIMIT $5`, req.Principal.UserID, before, q.Unread, q.Category, pg.Limit+1)
		if err != nil {
			return err
		}
		items, err = collectInbox(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, pg.Limit, func(it InboxItem) []string { return []string{strconv.FormatInt(it.Seq, 10)} }))
}

func (p *Plugin) inboxSummary(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var out InboxSummary
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FILTER (WHERE read_at IS NULL), coalesce(max(inbox_seq), 0)
			FROM notifications WHERE recipient_id = $1 AND inbox_seq IS NOT NULL`, req.Principal.UserID).Scan(&out.Unread, &out.LastSeq)
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

func (p *Plugin) markRead(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	id, err := req.UUIDParam("notification_id")
	if err != nil {
		return nil, err
	}
	var items []InboxItem
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE notifications SET read_at = coalesce(read_at, $3) WHERE id = $1 AND recipient_id = $2 AND inbox_seq IS NOT NULL`,
			id, req.Principal.UserID, p.now()); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+inboxColumns+` FROM notifications n WHERE n.id = $1 AND n.recipient_id = $2 AND n.inbox_seq IS NOT NULL`, id, req.Principal.UserID)
		if err != nil {
			return err
		}
		items, err = collectInbox(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, sdk.Errorf(sdk.ErrNotFound, "no notification %s in your inbox", id)
	}
	return sdk.JSON(http.StatusOK, items[0])
}

func (p *Plugin) markAllRead(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var out ReadAll
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE notifications SET read_at = $2 WHERE recipient_id = $1 AND inbox_seq IS NOT NULL AND read_at IS NULL`,
			req.Principal.UserID, p.now())
		out.Marked = int(tag.RowsAffected())
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, out)
}

// stream sends a person's in-app notifications as Server-Sent Events
// (event "notification", ID its seq). A first connection starts from now;
// a reconnection with Last-Event-ID first sends what came after it.
func (p *Plugin) stream(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
	if !req.Principal.IsUser() {
		return sdk.Errorf(sdk.ErrForbidden, "the inbox stream is a person's").WithCode("not_a_person")
	}
	last := int64(-1)
	if v := strings.TrimSpace(req.LastEventID()); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return invalid("invalid", "Last-Event-ID", "must be the ID of an event this stream sent")
		}
		last = n
	}
	tenant, user := req.Tenant(), req.Principal.UserID
	// Subscribe before reading, so that what commits meanwhile wakes us.
	sub := p.hub.subscribe(tenant, user)
	defer p.hub.unsubscribe(sub)
	if last < 0 {
		err := req.Tx(ctx, func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT coalesce(max(inbox_seq), 0) FROM notifications WHERE recipient_id = $1 AND inbox_seq IS NOT NULL`, user).Scan(&last)
		})
		if err != nil {
			return err
		}
	}
	sse := sdk.NewSSE(w)
	send := func(it *InboxItem) error {
		if err := sse.Send(sdk.SSEEvent{ID: strconv.FormatInt(it.Seq, 10), Event: "notification", Data: it}); err != nil {
			return err
		}
		last = it.Seq
		return nil
	}
	catchUp := func() error {
		for {
			var items []InboxItem
			err := req.Tx(ctx, func(tx pgx.Tx) error {
				var err error
				items, err = inboxAfter(ctx, tx, user, last, 200)
				return err
			})
			if err != nil {
				return err
			}
			for i := range items {
				if err := send(&items[i]); err != nil {
					return err
				}
			}
			if len(items) < 200 {
				return nil
			}
		}
	}
	if err := catchUp(); err != nil {
		return streamErr(ctx, err)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case it := <-sub.items:
			switch {
			case it.Seq <= last:
			case it.Seq == last+1:
				if err := send(it); err != nil {
					return streamErr(ctx, err)
				}
			default: // something in between is not here yet: read it
				if err := catchUp(); err != nil {
					return streamErr(ctx, err)
				}
			}
		case <-sub.wake:
			if err := catchUp(); err != nil {
				return streamErr(ctx, err)
			}
		}
	}
}

// streamErr ends a stream: nil when the client went away (a complete
// answer), the error otherwise (the answer is cut short, and the client
// reconnects with Last-Event-ID).
func streamErr(ctx context.Context, err error) error {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
