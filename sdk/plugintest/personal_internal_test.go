package plugintest

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
)

// The coverage check: a table with personal columns no data class
// describes fails the plugin's tests, naming the table and the column and
// why it looks personal; NotPersonal answers it without lying.
func TestCoverageCheck(t *testing.T) {
	t.Parallel()
	migration := func(sql string) fstest.MapFS { return fstest.MapFS{"0001_t.up.sql": {Data: []byte(sql)}} }
	profiles := migration(`
		CREATE TABLE profiles (
			tenant_id    uuid NOT NULL,
			user_id      uuid NOT NULL,
			display_name text NOT NULL,
			work_email   text,
			status       text NOT NULL CHECK (status IN ('active', 'away')),
			motto        text NOT NULL DEFAULT '',
			external_id  text,
			visits       integer NOT NULL DEFAULT 0
		);
		CREATE TABLE rooms (tenant_id uuid NOT NULL, name text NOT NULL, booked_by uuid);
		CREATE TABLE tags (tenant_id uuid NOT NULL, label text NOT NULL, preferences jsonb);
		COMMENT ON COLUMN tags.preferences IS 'Personal: how each member likes to be tagged.';`)
	described := []sdk.DataClass{
		{Name: "profiles", Table: "profiles", Subject: "user_id", OnErase: sdk.Delete, Columns: []sdk.PersonalColumn{
			{Name: "display_name", Kind: sdk.PersonName}, {Name: "work_email", Kind: sdk.Email}, {Name: "motto", Kind: sdk.FreeText},
		}},
		{Name: "bookings", Table: "rooms", Columns: []sdk.PersonalColumn{{Name: "booked_by", Kind: sdk.UserRef}}, NotPersonal: []string{"name"}},
		{Name: "tag_preferences", Table: "tags", Columns: []sdk.PersonalColumn{{Name: "preferences", Kind: sdk.OtherPersonal}},
			NotPersonal: []string{"label"}, Erase: noErase, Export: noExport},
	}
	for _, tc := range []struct {
		name     string
		personal []sdk.DataClass
		sql      fstest.MapFS
		want     []string // in the failure; none: New succeeds
	}{
		{"nothing described", nil, profiles, []string{
			"table profiles, column user_id: its name says it names a person",
			"table profiles, column display_name: its name says it holds a person's name",
			"table profiles, column work_email: its name says it holds an email address",
			"table profiles, column motto: free text in a table about people (user_id looks personal)",
			"table rooms, column booked_by: its name says it names a person",
			"table rooms, column name: free text in a table about people (booked_by looks personal)",
			"table tags, column preferences: its comment says it is personal",
			"table tags, column label: free text in a table about people (preferences looks personal)",
		}},
		{"all described", described, profiles, nil},
		{"a column left out", []sdk.DataClass{described[0], {Name: "bookings", Table: "rooms", Columns: described[1].Columns}, described[2]}, profiles,
			[]string{"table rooms, column name: free text"}},
		{"a table that does not exist", append([]sdk.DataClass{{Name: "ghosts", Table: "ghosts", Subject: "user_id", OnErase: sdk.Delete}}, described...), profiles,
			[]string{`data class "ghosts": schema plugin_cov has no table "ghosts"`}},
		{"a column that does not exist", []sdk.DataClass{described[1], described[2], {Name: "profiles", Table: "profiles", Subject: "user_id", OnErase: sdk.Delete,
			Columns: append(described[0].Columns, sdk.PersonalColumn{Name: "phone", Kind: sdk.Contact})}}, profiles,
			[]string{`data class "profiles": table profiles has no column "phone"`}},
		{"a NOT NULL column anonymise cannot empty", []sdk.DataClass{described[1], described[2], {Name: "profiles", Table: "profiles", Subject: "user_id", OnErase: sdk.Anonymise,
			Columns: append(described[0].Columns, sdk.PersonalColumn{Name: "visits", Kind: sdk.OtherPersonal})}}, profiles,
			[]string{`data class "profiles": column visits is NOT NULL integer: give it a Token, or let it be NULL`}},
		{"a token answers it", []sdk.DataClass{described[1], described[2], {Name: "profiles", Table: "profiles", Subject: "user_id", OnErase: sdk.Anonymise,
			Columns: append(described[0].Columns, sdk.PersonalColumn{Name: "visits", Kind: sdk.OtherPersonal, Token: "0"})}}, profiles, nil},
		{"generic SQL on a table without tenant_id", []sdk.DataClass{{Name: "logins", Table: "logins", Subject: "user_id", OnErase: sdk.Delete}},
			migration(`CREATE TABLE logins (user_id uuid NOT NULL)`),
			[]string{`data class "logins": table logins has no tenant_id column`}},
		{"keep with personal data", []sdk.DataClass{{Name: "profiles", Table: "profiles", Subject: "user_id", OnErase: sdk.Keep,
			Columns: described[0].Columns}}, profiles, []string{`data class "profiles": column display_name holds name data, which keep would leave`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			msg := newFails(&tiny{name: "cov", migrations: tc.sql, personal: tc.personal})
			if tc.want == nil {
				require.Empty(t, msg)
				return
			}
			for _, w := range tc.want {
				require.Contains(t, msg, w)
			}
		})
	}
}

func noErase(_ context.Context, _ *sdk.PersonalErasure) error { return nil }
func noExport(_ context.Context, _ *sdk.PersonalExport) error { return nil }
