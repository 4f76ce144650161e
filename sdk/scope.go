package sdk

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"
)

// Scope is the unit of work a handler runs in: a *Request, a delivered
// *Event or a *JobRun. Each runs transactions scoped to its institution
// and publishes events with itself as their cause, so a helper shared by a
// route, a subscription and a job takes a Scope:
//
//	func (p *Plugin) award(ctx context.Context, s sdk.Scope, userID string, points int) error {
//		return s.Tx(ctx, func(tx pgx.Tx) error {
//			...
//			return s.Publish(ctx, tx, EventPointsAwarded, PointsAwarded{...})
//		})
//	}
//
// Since: v1.2
type Scope interface {
	// Tenant is the institution the work is for ("" for platform work).
	Tenant() string
	// Tx runs fn in a transaction that row-level security scopes to Tenant.
	Tx(ctx context.Context, fn func(tx pgx.Tx) error) error
	// Publish writes an event to the plugin's outbox inside tx; it is
	// delivered if and only if tx commits.
	Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error
	// Host is the kernel's services (the Env's Host).
	Host() Host

	config(ctx context.Context) (json.RawMessage, error)
	runtime() *runtime
}
