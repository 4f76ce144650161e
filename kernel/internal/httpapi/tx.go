package httpapi

import (
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/labstack/echo/v4"

	"github.com/edulure/edulure/kernel/internal/audit"
	"github.com/edulure/edulure/kernel/internal/database"
	"github.com/edulure/edulure/kernel/internal/events"
	"github.com/edulure/edulure/kernel/internal/outbox"
)

// txc is one request's transaction, with helpers that write the audit
// entry and events of the change in the same transaction.
type txc struct {
	pgx.Tx
	s         *Server
	c         echo.Context
	changes   []string // change notifications to apply locally after commit
	published bool     // an event was written to the outbox: wake the relay after commit
}

// inTx runs fn in a transaction. After a commit, the changes fn recorded are
// applied to this replica's caches at once (other replicas hear the NOTIFY).
func (s *Server) inTx(c echo.Context, fn func(t *txc) error) error {
	ctx := c.Request().Context()
	var changes []string
	published := false
	err := database.InTx(ctx, s.Pool, func(tx pgx.Tx) error {
		t := &txc{Tx: tx, s: s, c: c}
		err := fn(t)
		changes = t.changes
		published = t.published
		return err
	})
	if err == nil && published && s.Events != nil {
		s.Events.Wake(events.KernelSource)
	}
	if err == nil {
		for _, ch := range changes {
			s.applyChange(ctx, ch)
		}
	}
	return err
}

func (t *txc) changed(payload string) { t.changes = append(t.changes, payload) }

// audit appends an entry to the tenant's chain (platform chain for uuid.Nil).
func (t *txc) audit(tenant uuid.UUID, action, target string, data map[string]any) error {
	kind, id := principalOf(t.c).Actor()
	if kind == "anonymous" {
		if sub, ok := data["user_id"].(string); ok {
			id = sub
		}
	}
	e := audit.Entry{
		ActorType: kind, ActorID: id, Action: action, Target: target, Data: data,
		IP: t.c.RealIP(), RequestID: t.c.Response().Header().Get(echo.HeaderXRequestID),
	}
	if tenant != uuid.Nil {
		e.TenantID = tenant.String()
	}
	return audit.Append(t.c.Request().Context(), t.Tx, e)
}

// event writes an event to the kernel outbox.
func (t *txc) event(typ string, tenant uuid.UUID, data any) error {
	_, err := t.eventID(typ, tenant, data)
	return err
}

// eventID is event, returning the event's ID.
func (t *txc) eventID(typ string, tenant uuid.UUID, data any) (string, error) {
	kind, id := principalOf(t.c).Actor()
	ev := outbox.Event{Type: typ, Actor: kind + ":" + id, RequestID: t.c.Response().Header().Get(echo.HeaderXRequestID), Data: data, Sealer: t.s.Sealer}
	if kind == "anonymous" {
		ev.Actor = "anonymous"
	}
	if tenant != uuid.Nil {
		ev.TenantID = tenant.String()
	}
	t.published = true
	return outbox.Add(t.c.Request().Context(), t.Tx, ev)
}
