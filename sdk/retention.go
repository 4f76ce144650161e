package sdk

import (
	"context"
	"encoding/json"
	"time"

	"github.com/jackc/pgx/v5"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// RetentionClass is one kind of the plugin's data that expires: the rows
// of Table whose TimeColumn is before a cutoff. The institution decides the
// period and the action (a governance plugin keeps the policies); the
// plugin, asked through ApplyRetention, deletes or anonymises its own rows
// with generic SQL the SDK writes from the names declared here (quoted,
// never taken from a request), in batches of their own transactions, under
// the institution's row-level security (archiving each batch to the
// plugin's object storage first, for RetainArchive). Apply replaces that
// SQL for a class that needs more (dropping whole partitions).
//
//	Retention: []sdk.RetentionClass{{
//		Name: "posts", Description: "Forum posts, by when they were written.",
//		Table: "posts", TimeColumn: "created_at", Subject: "author_id",
//		HoldColumns: map[string]string{"course": "course_id"},
//		Actions:     []sdk.RetentionAction{sdk.RetainDelete},
//	}},
//
// A dry run and an execution select the same rows: expired (TimeColumn <
// cutoff) and under no hold. A "tenant" hold suspends the class; a
// "person" hold keeps the rows whose Subject is the person; a hold of a
// HoldColumns kind keeps the rows whose column is its ID.
//
// Since: v1.3
type RetentionClass struct {
	// Name is unique within the plugin: lowercase letters, digits and
	// underscores.
	Name, Description string
	// Table in the plugin's schema, with a tenant_id column.
	Table string
	// TimeColumn: rows with TimeColumn < cutoff are expired. A NULL never is.
	TimeColumn string
	// Subject is the column naming the person a row is about, for person
	// holds (and the anonymise action); optional.
	Subject string
	// HoldColumns maps a hold kind to the column it matches
	// ("course": "course_id").
	HoldColumns map[string]string
	// Anonymise are the columns the anonymise action clears (NULL, or the
	// token of their type, as DataClass's Anonymise does); Subject, when
	// set, becomes a fresh pseudonym per row.
	Anonymise []PersonalColumn
	// ID is the column that names a row in SampleIDs and Cascade (unique
	// within an institution); empty: the primary key (a composite key's
	// values joined with "/").
	ID string
	// Cascade, when set, runs in each batch's transaction just before its
	// rows are deleted or anonymised, with their IDs: it clears what hangs
	// off them without a foreign key (revisions, mentions), and may delete
	// their objects from run.Storage() (a batch that then fails to commit
	// is selected again; its objects are already gone). The generic SQL
	// only.
	Cascade func(ctx context.Context, run *RetentionRun, tx pgx.Tx, ids []string) error
	// Actions the class supports.
	Actions []RetentionAction
	// Apply, when set, applies retention instead of the generic SQL
	// (run.Default runs that too).
	Apply RetentionFunc
}

// RetentionAction is what retention does to expired rows.
//
// Since: v1.3
type RetentionAction string

// The retention actions.
const (
	RetainDelete    RetentionAction = "delete"
	RetainAnonymise RetentionAction = "anonymise"
	// RetainArchive writes the rows to object storage, then deletes them:
	// the generic SQL stores each batch at RetentionArchiveKey (write-once)
	// before deleting it; the plugin must declare CapStorage.
	RetainArchive RetentionAction = "archive"
)

// The hold kinds every class takes.
const (
	HoldTenant = "tenant"
	HoldPerson = "person"
)

// RetentionHold suspends retention for what it names: Kind "tenant"
// (everything), "person" (ID a user ID) or a class's HoldColumns kind.
//
// Since: v1.3
type RetentionHold struct {
	Kind string `json:"kind"`
	ID   string `json:"id,omitempty"`
}

// RetentionRequest asks a plugin to apply retention to one class in one
// institution.
//
// Since: v1.3
type RetentionRequest struct {
	TenantID string          `json:"tenant_id"`
	Class    string          `json:"class"`
	Cutoff   time.Time       `json:"cutoff"`
	Action   RetentionAction `json:"action"`
	DryRun   bool            `json:"dry_run"`
	Holds    []RetentionHold `json:"holds,omitempty"`
	// SampleLimit is how many sample IDs to answer: 0 to 100.
	SampleLimit int    `json:"sample_limit,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// RetentionResult is what retention selected and did.
//
// Since: v1.3
type RetentionResult struct {
	Class string `json:"class"`
	// Matched counts the rows selected: expired and under no hold.
	Matched int64 `json:"matched"`
	// Affected counts the rows deleted or anonymised (0 in a dry run).
	Affected int64 `json:"affected"`
	// SampleIDs are primary keys of some selected rows (a composite key's
	// values joined with "/").
	SampleIDs []string `json:"sample_ids,omitempty"`
	// Archived are the object storage keys an archive wrote.
	Archived []string `json:"archived,omitempty"`
}

// RetentionFunc applies retention to a class.
//
// Since: v1.3
type RetentionFunc func(ctx context.Context, run *RetentionRun) (RetentionResult, error)

// RetentionRun is one retention request as a RetentionFunc serves it. It
// is a Scope of the request's institution.
//
// Since: v1.3
type RetentionRun struct {
	RetentionRequest
	// Class is the class the request names.
	Class RetentionClass

	rt *runtime
}

var _ Scope = (*RetentionRun)(nil)

// Tenant is the institution the request is for.
func (r *RetentionRun) Tenant() string { return r.TenantID }

// Tx runs fn in a transaction scoped to the institution. Keep each to a
// batch.
func (r *RetentionRun) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return r.rt.tx(ctx, r.TenantID, fn)
}

// Publish writes an event to the plugin's outbox inside tx.
func (r *RetentionRun) Publish(ctx context.Context, tx pgx.Tx, eventType string, data any) error {
	return r.rt.publish(ctx, tx, Outgoing{Type: eventType, TenantID: r.TenantID, Data: data})
}

// Host is the kernel's services.
func (r *RetentionRun) Host() Host { return r.rt.hostOrNone() }

// Storage is the institution's object storage (sdk.Storage).
func (r *RetentionRun) Storage() *Bucket {
	return r.rt.bucket(&pluginv1.BlobScope{TenantId: r.TenantID})
}

// Default runs the generic SQL of the class.
func (r *RetentionRun) Default(ctx context.Context) (RetentionResult, error) {
	return r.rt.defaultRetention(ctx, r)
}

// Held reports whether a hold of kind covers id (a "tenant" hold covers
// everything).
func (r *RetentionRun) Held(kind, id string) bool {
	for _, h := range r.Holds {
		if h.Kind == HoldTenant || h.Kind == kind && h.ID == id {
			return true
		}
	}
	return false
}

func (r *RetentionRun) config(ctx context.Context) (json.RawMessage, error) {
	return tenantConfig(ctx, r.rt, r.TenantID)
}

func (r *RetentionRun) runtime() *runtime { return r.rt }
