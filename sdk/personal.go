package sdk

import (
	"context"
	"io"

	"github.com/jackc/pgx/v5"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// DataClass describes one kind of personal data the plugin holds: the rows
// of a table that are a person's, the columns with personal data, why the
// plugin keeps them and what erasing the person does. From the classes the
// SDK exports a person's data, erases a person (in batches, idempotently)
// and erases an institution, with generic SQL it writes from the names
// declared here (quoted, never taken from a request); Export and Erase
// replace that SQL for a class that needs more.
//
//	PersonalData: []sdk.DataClass{{
//		Name: "submissions", Table: "submissions", Subject: "user_id",
//		Purpose:   "The work a learner hands in, and its grade.",
//		Retention: "As long as the course exists; anonymised when the learner is erased, so its statistics stay.",
//		OnErase:   sdk.Anonymise,
//		Columns: []sdk.PersonalColumn{
//			{Name: "body", Kind: sdk.FreeText},
//			{Name: "feedback", Kind: sdk.FreeText, Description: "The grader's words about the work."},
//			{Name: "graded_by", Kind: sdk.UserRef},
//		},
//		NotPersonal: []string{"levels"},
//	}},
//
// An export holds, per class, the file <Name>.jsonl with the person's rows
// (every column but tenant_id and those another class of the table
// describes; a column naming someone else is null), and,
// when the class has reference columns, <Name>.references.jsonl with the
// rows of others that name the person (the row's primary key and the
// columns naming them): what they did, without others' data.
//
// Erasing a person processes the classes in the order declared (declare a
// class whose rows hang off another's, through Through or a foreign key,
// before that one), each in batches of its own transactions:
//
//   - the person's rows (by Subject) are deleted (Delete), or kept with
//     Subject set to the erasure's pseudonym and the personal Columns to
//     NULL or a fixed token (Anonymise), or kept with Subject set to the
//     pseudonym (Keep: the row holds nothing personal besides);
//   - then, in every row of the table, a reference column (UserRef,
//     ActorRef) naming the person is set to the pseudonym.
//
// The pseudonym is one random UUID per erasure, which names no one: rows
// that stay still add up (one learner's attempts remain one learner's).
// A repeated erasure finds nothing to change and counts zero.
//
// Since: v1.2
type DataClass struct {
	// Name is unique within the plugin, lowercase letters, digits and
	// underscores: "enrolments".
	Name string
	// Table in the plugin's schema, with a tenant_id column (the generic
	// SQL runs under the institution's row-level security). Empty for a
	// class of objects only.
	Table string
	// Subject is the column holding the user ID of the person a row is
	// about (a uuid, or text). Empty when the rows are about no one but name
	// people in reference columns (a course's created_by). With Through, a
	// column of the parent table.
	Subject string
	// Through finds the person's rows through a parent row, for a table
	// without a column naming them (a lesson's progress, under its
	// enrolment).
	Through *Through
	// Columns are the columns holding personal data, and the columns that
	// name another person (UserRef, ActorRef).
	Columns []PersonalColumn
	// Purpose says why the plugin holds the data; Retention how long, and
	// what that means.
	Purpose, Retention string
	// OnErase is what erasing the person does to their rows. Required with
	// a Subject; a class without one keeps its rows (Keep).
	OnErase EraseRule
	// NotPersonal lists columns of the table that look personal to the
	// coverage check (sdk/plugintest) but hold nothing personal: a course
	// title in a table with a created_by.
	NotPersonal []string
	// Objects is the prefix of the person's objects in the institution's
	// object storage (Storage), with {user_id} where their ID goes:
	// "submissions/{user_id}/". The generic export adds them as files
	// objects/<key>; the generic erasure deletes them. Needs CapStorage.
	Objects string
	// Export, when set, exports the class instead of the generic SQL
	// (x.Default runs that too).
	Export ExportFunc
	// Erase, when set, erases the person's data of the class instead of the
	// generic SQL (e.Default runs that too).
	Erase EraseFunc
}

// Through joins a class's table to the parent table whose Subject names
// the person: rows whose Column equals the Key of a parent row of theirs.
//
// Since: v1.2
type Through struct {
	Column, Table, Key string
}

// PersonalColumn is a column with personal data, or naming a person.
//
// Since: v1.2
type PersonalColumn struct {
	Name        string
	Kind        DataKind
	Description string
	// Token is what Anonymise writes into a NOT NULL column. Empty: the
	// SDK's own, by type: ErasedText for text, an empty JSON array or
	// object (or null) for JSON, an empty array, the nil UUID. A nullable
	// column becomes NULL.
	Token string
}

// DataKind is the kind of data a personal column holds.
//
// Since: v1.2
type DataKind string

// The kinds of personal data. UserRef and ActorRef name another person
// than the row's subject (its grader, its author); the others are the
// subject's data.
const (
	UserRef       DataKind = "user_ref"   // a user ID (uuid or text): created_by, graded_by
	ActorRef      DataKind = "actor_ref"  // "user:<id>", as Principal.Actor writes it
	Identifier    DataKind = "identifier" // another identifier of the person: a student number, a username
	Email         DataKind = "email"
	PersonName    DataKind = "name"
	Contact       DataKind = "contact"   // a phone number, a postal address
	Network       DataKind = "network"   // an IP address, a user agent
	FreeText      DataKind = "free_text" // what the person wrote, or what was written about them
	OtherPersonal DataKind = "other"
)

// EraseRule says what erasing a person does to their rows.
//
// Since: v1.2
type EraseRule string

// The erase rules.
const (
	// Delete deletes the person's rows.
	Delete EraseRule = "delete"
	// Anonymise keeps the rows (a grade in a course's statistics, an
	// order in the books): their Subject becomes the pseudonym and their
	// personal Columns NULL or a token.
	Anonymise EraseRule = "anonymise"
	// Keep keeps the rows, with their Subject set to the pseudonym: for
	// rows that hold nothing personal but whose they were.
	Keep EraseRule = "keep"
)

// ErasedText is what Anonymise writes into a NOT NULL text column without
// a Token of its own.
const ErasedText = "[erased]"

// ExportFunc exports a data class's rows of one person.
//
// Since: v1.2
type ExportFunc func(ctx context.Context, x *PersonalExport) error

// EraseFunc erases a data class's rows of one person.
//
// Since: v1.2
type EraseFunc func(ctx context.Context, e *PersonalErasure) error

// PersonalExport is one data class's part of a person's export, as an
// ExportFunc writes it.
//
// Since: v1.2
type PersonalExport struct {
	TenantID, UserID string

	rt    *runtime
	class *classPlan
	w     *exportWriter
}

// Tx runs fn in a transaction scoped to the institution.
func (x *PersonalExport) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return x.rt.tx(ctx, x.TenantID, fn)
}

// Row adds v, encoded as a JSON object, to the class's rows of the
// person (<class>.jsonl).
func (x *PersonalExport) Row(v any) error { return x.w.line(x.class.rowsFile(), x.class, v) }

// Reference adds v, encoded as a JSON object, to the class's rows of
// others that name the person (<class>.references.jsonl): say what they
// did, leave out what is someone else's.
func (x *PersonalExport) Reference(v any) error { return x.w.line(x.class.refsFile(), x.class, v) }

// Object adds the content of r to the export as the file objects/<key>
// (a file of the person's: an upload, a generated document).
func (x *PersonalExport) Object(key string, r io.Reader) error {
	return x.w.data("objects/"+key, x.class.Name, r)
}

// Storage is the institution's object storage (sdk.Storage).
func (x *PersonalExport) Storage() *Bucket {
	return x.rt.bucket(&pluginv1.BlobScope{TenantId: x.TenantID})
}

// Default runs the generic export of the class.
func (x *PersonalExport) Default(ctx context.Context) error {
	return x.rt.exportClass(ctx, x.class, x.TenantID, x.UserID, x.w)
}

// PersonalErasure is the erasure of one person's data of one data class,
// as an EraseFunc does it. It reports what it changed (or with DryRun what
// it would change) with Deleted, Anonymised and References, and must be
// idempotent: run again, it finds nothing and reports nothing.
//
// Since: v1.2
type PersonalErasure struct {
	TenantID, UserID string
	// Pseudonym is the UUID that replaces the person's ID in rows that stay.
	Pseudonym string
	// DryRun: count, change nothing.
	DryRun bool

	rt    *runtime
	class *classPlan
	count *erasureCount
}

// Tx runs fn in a transaction scoped to the institution. Keep each to a
// batch: a large erasure should not hold one huge transaction.
func (e *PersonalErasure) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return e.rt.tx(ctx, e.TenantID, fn)
}

// Deleted counts n rows of the person deleted.
func (e *PersonalErasure) Deleted(n int64) { e.count.deleted += n }

// Anonymised counts n rows of the person kept without their personal data.
func (e *PersonalErasure) Anonymised(n int64) { e.count.anonymised += n }

// References counts n values naming the person replaced in rows of others.
func (e *PersonalErasure) References(n int64) { e.count.references += n }

// Objects counts n of the person's objects deleted from storage.
func (e *PersonalErasure) Objects(n int64) { e.count.objects += n }

// Storage is the institution's object storage (sdk.Storage).
func (e *PersonalErasure) Storage() *Bucket {
	return e.rt.bucket(&pluginv1.BlobScope{TenantId: e.TenantID})
}

// Default runs the generic erasure of the class.
func (e *PersonalErasure) Default(ctx context.Context) error {
	return e.rt.eraseClass(ctx, e.class, e, e.count)
}

// TenantEraser is a Plugin that erases something of an institution the
// SDK cannot find by its tenant_id: rows of tables without one (a public
// lookup table). EraseTenant runs first when the kernel erases an
// institution; the SDK then deletes the rows of every table with a
// tenant_id, children before parents, in batches, and, with CapStorage,
// every object of the institution's storage.
//
// Since: v1.2
type TenantEraser interface {
	EraseTenant(ctx context.Context, e *TenantErasure) error
}

// TenantErasure is the erasure of one institution, as EraseTenant does
// it: report each table's rows with Deleted (with DryRun, count them and
// change nothing).
//
// Since: v1.2
type TenantErasure struct {
	TenantID string
	DryRun   bool

	rt     *runtime
	counts map[string]int64
	order  []string
}

// Tx runs fn in a transaction scoped to the institution.
func (e *TenantErasure) Tx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return e.rt.tx(ctx, e.TenantID, fn)
}

// Deleted counts n rows of table deleted.
func (e *TenantErasure) Deleted(table string, n int64) {
	if _, ok := e.counts[table]; !ok {
		e.order = append(e.order, table)
	}
	e.counts[table] += n
}
