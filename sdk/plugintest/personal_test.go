package plugintest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

// diary is a plugin with one data class of each shape: the person's rows
// anonymised (journals: a nullable name, a NOT NULL JSON column, a
// reference to a reviewer, an actor reference), deleted through a parent
// (entries), deleted (contacts), kept (badges), and a class the plugin
// exports and erases itself (mentions: user IDs inside JSON), with a
// public table only its TenantEraser can find an institution's rows in.
type diary struct{}

var (
	_ sdk.Plugin       = diary{}
	_ sdk.TenantEraser = diary{}
)

var diaryMigrations = fstest.MapFS{"0001_diary.up.sql": {Data: []byte(`
	CREATE TABLE journals (
		tenant_id   uuid NOT NULL,
		id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
		owner_id    uuid NOT NULL,
		title       text NOT NULL CHECK (char_length(title) >= 1),
		mood        text NOT NULL DEFAULT 'good' CHECK (mood IN ('good', 'bad')),
		settings    jsonb NOT NULL DEFAULT '{}',
		nickname    text,
		reviewed_by uuid,
		created_by  text NOT NULL
	);
	COMMENT ON COLUMN journals.settings IS 'Personal: the owner''s preferences.';
	CREATE TABLE entries (
		tenant_id  uuid NOT NULL,
		id         bigserial PRIMARY KEY,
		journal_id uuid NOT NULL REFERENCES journals (id),
		body       text NOT NULL
	);
	CREATE TABLE contacts (
		tenant_id uuid NOT NULL,
		user_id   uuid NOT NULL,
		email     text NOT NULL,
		PRIMARY KEY (tenant_id, user_id)
	);
	CREATE TABLE badges (
		tenant_id           uuid NOT NULL,
		id                  bigserial PRIMARY KEY,
		awarded_to_user_id  uuid NOT NULL,
		badge               text NOT NULL CHECK (badge ~ '^[a-z]+$')
	);
	CREATE TABLE mentions (
		tenant_id uuid NOT NULL,
		id        bigserial PRIMARY KEY,
		users     jsonb NOT NULL
	);
	COMMENT ON COLUMN mentions.users IS 'Personal: the IDs of the members mentioned.';
	-- Outside row-level security: found through journals.
	CREATE TABLE shared_links (id uuid PRIMARY KEY, journal_id uuid NOT NULL);`)}}

func (diary) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "diary", Version: "0.1.0", Migrations: diaryMigrations,
		Capabilities: []sdk.Capability{sdk.CapStorage},
		PersonalData: []sdk.DataClass{
			{Name: "uploads", Objects: "uploads/{user_id}/", Purpose: "Files a member attaches to their journal."},
			// Before journals: its rows are found through the owner's.
			{Name: "entries", Table: "entries", Subject: "owner_id", Through: &sdk.Through{Column: "journal_id", Table: "journals", Key: "id"},
				OnErase: sdk.Delete, Columns: []sdk.PersonalColumn{{Name: "body", Kind: sdk.FreeText}}},
			{Name: "journals", Table: "journals", Subject: "owner_id", OnErase: sdk.Anonymise,
				Purpose: "A member's journal.", Retention: "Kept anonymised for the institution's statistics.",
				Columns: []sdk.PersonalColumn{
					{Name: "nickname", Kind: sdk.PersonName}, {Name: "settings", Kind: sdk.OtherPersonal},
					{Name: "reviewed_by", Kind: sdk.UserRef}, {Name: "created_by", Kind: sdk.ActorRef},
				},
				NotPersonal: []string{"title"}},
			{Name: "contacts", Table: "contacts", Subject: "user_id", OnErase: sdk.Delete,
				Columns: []sdk.PersonalColumn{{Name: "email", Kind: sdk.Email}}},
			{Name: "badges", Table: "badges", Subject: "awarded_to_user_id", OnErase: sdk.Keep},
			{Name: "mentions", Table: "mentions", Columns: []sdk.PersonalColumn{{Name: "users", Kind: sdk.OtherPersonal}},
				Export: exportMentions, Erase: eraseMentions},
		},
	}
}

func exportMentions(ctx context.Context, x *sdk.PersonalExport) error {
	return x.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT id FROM mentions WHERE users ? $1 ORDER BY id`, x.UserID)
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		for _, id := range ids {
			if err := x.Reference(map[string]any{"id": id}); err != nil {
				return err
			}
		}
		return nil
	})
}

func eraseMentions(ctx context.Context, e *sdk.PersonalErasure) error {
	return e.Tx(ctx, func(tx pgx.Tx) error {
		if e.DryRun {
			var n int64
			err := tx.QueryRow(ctx, `SELECT count(*) FROM mentions WHERE users ? $1`, e.UserID).Scan(&n)
			e.References(n)
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE mentions SET users = (users - $1::text) || to_jsonb($2::text) WHERE users ? $1`, e.UserID, e.Pseudonym)
		e.References(tag.RowsAffected())
		return err
	})
}

// EraseTenant deletes the institution's shared links, which have no
// tenant_id, while its journals still say which they are.
func (diary) EraseTenant(ctx context.Context, e *sdk.TenantErasure) error {
	return e.Tx(ctx, func(tx pgx.Tx) error {
		q := `DELETE FROM shared_links WHERE journal_id IN (SELECT id FROM journals)`
		if e.DryRun {
			q = `SELECT count(*) FROM shared_links WHERE journal_id IN (SELECT id FROM journals)`
			var n int64
			err := tx.QueryRow(ctx, q).Scan(&n)
			e.Deleted("shared_links", n)
			return err
		}
		tag, err := tx.Exec(ctx, q)
		e.Deleted("shared_links", tag.RowsAffected())
		return err
	})
}

// diaryPerson writes a person's data in an institution: a journal with two
// entries (reviewed by reviewer), a contact, a badge, and a mention in
// another member's list. It returns the journal's ID.
func diaryPerson(t *testing.T, h *plugintest.Harness, tenant, person, name, email, reviewer string) string {
	t.Helper()
	var journal string
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		ctx := t.Context()
		if err := tx.QueryRow(ctx, `INSERT INTO journals (tenant_id, owner_id, title, settings, nickname, reviewed_by, created_by)
			VALUES ($1, $2, 'Days', '{"theme": "dark"}', $3, $4, $5) RETURNING id`, tenant, person, name, orNull(reviewer), "user:"+person).Scan(&journal); err != nil {
			return err
		}
		for _, body := range []string{"Dear diary, I am " + name, "Write to me at " + email} {
			if _, err := tx.Exec(ctx, `INSERT INTO entries (tenant_id, journal_id, body) VALUES ($1, $2, $3)`, tenant, journal, body); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO contacts (tenant_id, user_id, email) VALUES ($1, $2, $3)`, tenant, person, email); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO badges (tenant_id, awarded_to_user_id, badge) VALUES ($1, $2, 'starter')`, tenant, person)
		return err
	}))
	_, err := h.DB().Exec(t.Context(), `INSERT INTO plugin_diary.shared_links (id, journal_id) VALUES (gen_random_uuid(), $1)`, journal)
	require.NoError(t, err)
	_, err = h.Storage(tenant).Put(t.Context(), "uploads/"+person+"/cv.txt", strings.NewReader("CV of "+name), sdk.PutOptions{ContentType: "text/plain"})
	require.NoError(t, err)
	return journal
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestPersonalData(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, diary{})
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	person, other := plugintest.NewID(), plugintest.NewID()
	const name, email = "Zephyrine Quillfeather", "zephyrine.q@example.test"

	diaryPerson(t, h, a, person, name, email, other)
	theirs := diaryPerson(t, h, a, other, "Otto Other", "otto@example.test", person)
	diaryPerson(t, h, b, person, name, email, "")
	require.NoError(t, h.InTenant(a, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO mentions (tenant_id, users) VALUES ($1, jsonb_build_array($2::text, $3::text))`, a, person, other)
		return err
	}))

	t.Run("export holds theirs and nothing of others", func(t *testing.T) {
		ex := h.ExportPersonalData(t, a, person)
		require.Len(t, ex.Rows("journals"), 1)
		j := ex.Rows("journals")[0]
		require.Equal(t, name, j["nickname"])
		require.Equal(t, "user:"+person, j["created_by"])
		require.Nil(t, j["reviewed_by"], "the reviewer is someone else")
		require.NotContains(t, j, "tenant_id")
		require.Len(t, ex.Rows("entries"), 2)
		require.Len(t, ex.Rows("contacts"), 1)
		require.Equal(t, email, ex.Rows("contacts")[0]["email"])
		require.Len(t, ex.Rows("badges"), 1)
		// The other member's journal names the person as its reviewer: its
		// key and that column, nothing else of it.
		require.Equal(t, []map[string]any{{"id": theirs, "reviewed_by": person}}, ex.References("journals"))
		require.Len(t, ex.References("mentions"), 1)
		require.NotContains(t, ex.Text(), other, "nothing names the other member")
		require.NotContains(t, ex.Text(), "Otto")
		var files []string
		for _, f := range ex.Manifest {
			files = append(files, f.File)
		}
		require.Equal(t, []string{"objects/uploads/" + person + "/cv.txt", "entries.jsonl", "journals.jsonl", "journals.references.jsonl",
			"contacts.jsonl", "badges.jsonl", "mentions.jsonl", "mentions.references.jsonl"}, files)
		require.Equal(t, map[string][]byte{"uploads/" + person + "/cv.txt": []byte("CV of " + name)}, ex.Objects)
	})

	t.Run("erasure", func(t *testing.T) {
		want := plugintest.Counts{
			{Class: "uploads", Objects: 1},
			{Class: "entries", Table: "entries", Deleted: 2},
			{Class: "journals", Table: "journals", Anonymised: 1, References: 2}, // the other's reviewed_by, their own created_by
			{Class: "contacts", Table: "contacts", Deleted: 1},
			{Class: "badges", Table: "badges", Anonymised: 1},
			{Class: "mentions", Table: "mentions", References: 1},
		}
		require.Equal(t, want, h.ErasePersonalDataDryRun(t, a, person))
		require.Equal(t, want, h.ErasePersonalData(t, a, person), "what the dry run said")

		// Nothing names them in a; b is untouched.
		for _, tr := range h.FindTraces(t, person, name, email) {
			require.Equal(t, []string{b}, tr.Tenants, "%s", tr)
		}
		require.NotEmpty(t, h.FindTraces(t, person, name, email))
		require.Len(t, h.ExportPersonalData(t, b, person).Rows("entries"), 2)

		// The anonymised journal: no name, settings emptied, its title kept.
		var nickname *string
		var settings, title, createdBy, owner string
		require.NoError(t, h.InTenant(a, func(tx pgx.Tx) error {
			return tx.QueryRow(t.Context(), `SELECT nickname, settings::text, title, created_by, owner_id::text FROM journals WHERE owner_id <> $1`, other).
				Scan(&nickname, &settings, &title, &createdBy, &owner)
		}))
		require.Nil(t, nickname)
		require.Equal(t, "{}", settings)
		require.Equal(t, "Days", title)
		require.Equal(t, "user:"+owner, createdBy, "one pseudonym for the person across the row")
		// The other member keeps everything of theirs.
		require.Len(t, h.ExportPersonalData(t, a, other).Rows("entries"), 2)
		require.Equal(t, "otto@example.test", h.ExportPersonalData(t, a, other).Rows("contacts")[0]["email"])
	})
}

// A large erasure runs in batches, each its own transaction, and still
// erases every row.
func TestPersonalDataBatches(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, diary{})
	tenant, person := plugintest.NewTenant(), plugintest.NewID()
	journal := diaryPerson(t, h, tenant, person, "Bea Batch", "bea@example.test", "")
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(t.Context(), `INSERT INTO entries (tenant_id, journal_id, body) SELECT $1, $2, 'entry ' || n FROM generate_series(1, 2500) n`, tenant, journal)
		return err
	}))
	got := h.ErasePersonalData(t, tenant, person)
	require.Equal(t, int64(2502), got.Of("entries").Deleted)
	h.RequireNoTrace(t, person, "Bea Batch", "bea@example.test")
}

func TestEraseTenant(t *testing.T) {
	t.Parallel()
	h := plugintest.New(t, diary{})
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	for i := range 3 {
		diaryPerson(t, h, a, plugintest.NewID(), fmt.Sprint("A person ", i), fmt.Sprintf("a%d@example.test", i), "")
	}
	kept := diaryPerson(t, h, b, plugintest.NewID(), "B person", "b@example.test", "")

	want := plugintest.Counts{
		{Table: "shared_links", Deleted: 3},
		{Table: "badges", Deleted: 3}, {Table: "contacts", Deleted: 3}, {Table: "entries", Deleted: 6},
		{Table: "journals", Deleted: 3}, {Table: "mentions"}, {Objects: 3},
	}
	require.Equal(t, want, h.EraseTenantDryRun(t, a))
	require.Equal(t, want, h.EraseTenant(t, a))
	h.RequireNoTrace(t, "A person", "a0@example.test")
	var links int
	require.NoError(t, h.DB().QueryRow(t.Context(), `SELECT count(*) FROM plugin_diary.shared_links WHERE journal_id = $1`, kept).Scan(&links))
	require.Equal(t, 1, links, "the other institution keeps its links")
	require.Equal(t, int64(3), h.EraseTenantDryRun(t, b).Table("entries").Deleted+h.EraseTenantDryRun(t, b).Table("contacts").Deleted)
}
