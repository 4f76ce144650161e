package wire

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

func TestCheckManifestPersonalData(t *testing.T) {
	t.Parallel()
	ok := func() *pluginv1.PersonalDataClass {
		return &pluginv1.PersonalDataClass{Name: "enrolments", Table: "enrolments", Subject: "user_id", OnErase: "anonymise",
			Columns: []*pluginv1.PersonalDataColumn{{Name: "note", Kind: "free_text"}, {Name: "enrolled_by", Kind: "actor_ref"}}}
	}
	for _, tc := range []struct {
		name string
		edit func(pd *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass)
		want string // "" when the manifest passes
	}{
		{"valid", func(*pluginv1.PersonalDataManifest, *pluginv1.PersonalDataClass) {}, ""},
		{"classes without the calls", func(pd *pluginv1.PersonalDataManifest, _ *pluginv1.PersonalDataClass) { pd.Served = false },
			"declares data classes but the plugin does not serve ExportPersonalData"},
		{"no erase rule", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.OnErase = "" }, "say what erasing a person does"},
		{"unknown erase rule", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.OnErase = "shred" }, `on_erase "shred" is not one of`},
		{"unknown kind", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.Columns[0].Kind = "secret" }, `kind "secret" is not one of`},
		{"keep with personal columns", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.OnErase = "keep" }, "which keep would leave"},
		{"keep with references only", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			c.OnErase, c.Columns = "keep", c.Columns[1:]
		}, ""},
		{"whose data", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			c.Subject, c.Columns = "", c.Columns[:1]
		}, "whose data is it"},
		{"subject listed again", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			c.Columns = append(c.Columns, &pluginv1.PersonalDataColumn{Name: "user_id", Kind: "identifier"})
		}, "is the subject"},
		{"quoted table", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.Table = `x"; DROP TABLE y` }, "is not a lowercase SQL name"},
		{"the kernel's table", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.Table = "edulure_outbox" }, "is the kernel's"},
		{"described and not personal", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			c.NotPersonal = []string{"note"}
		}, "both described and not personal"},
		{"twice", func(pd *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			pd.Classes = append(pd.Classes, c)
		}, "declared twice"},
		{"through without subject", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			c.Subject, c.Through = "", &pluginv1.PersonalDataThrough{Column: "enrolment_id", Table: "enrolments", Key: "id"}
		}, "needs the subject column"},
		{"objects", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) {
			c.ObjectPrefix = "uploads/{user_id}/"
		}, ""},
		{"objects without the ID", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.ObjectPrefix = "uploads/" }, "must hold {user_id}"},
		{"objects escaping", func(_ *pluginv1.PersonalDataManifest, c *pluginv1.PersonalDataClass) { c.ObjectPrefix = "../{user_id}" }, "without '..'"},
		{"bad not personal", func(pd *pluginv1.PersonalDataManifest, _ *pluginv1.PersonalDataClass) {
			pd.NotPersonal = []string{"title"}
		}, "must be table.column"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := ok()
			pd := &pluginv1.PersonalDataManifest{Served: true, Classes: []*pluginv1.PersonalDataClass{c}}
			tc.edit(pd, c)
			m := &pluginv1.Manifest{Name: "courses", Version: "1.0.0", PersonalData: pd, Capabilities: []string{CapStorage}}
			if tc.name == "objects without storage" {
				m.Capabilities = nil
			}
			_, errs := CheckManifest(m)
			var msgs []string
			for _, err := range errs {
				msgs = append(msgs, err.Error())
			}
			if tc.want == "" {
				require.Empty(t, msgs)
				return
			}
			require.Contains(t, strings.Join(msgs, "\n"), tc.want)
		})
	}
}
