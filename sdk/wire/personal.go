package wire

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// The rules of a manifest's personal data (Since: v1.2).
var (
	// DataClassName is the form of a data class's name (it names the
	// class's files in an export).
	DataClassName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)
	// SQLName is the form of a table or column a data class names: an
	// unquoted Postgres identifier in lowercase.
	SQLName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)
	// ObjectPrefix is the form of a class's object storage prefix.
	ObjectPrefix = regexp.MustCompile(`^[A-Za-z0-9_.{}-][A-Za-z0-9_./{}-]*$`)
	// PersonalKinds are the kinds of a personal column. user_ref and
	// actor_ref name another person (a grader, an author); the rest are the
	// row's person's data.
	PersonalKinds = []string{"user_ref", "actor_ref", "identifier", "email", "name", "contact", "network", "free_text", "other"}
	// EraseRules say what erasing a person does to their rows.
	EraseRules = []string{"delete", "anonymise", "keep"}
)

// IsReference reports whether a personal column's kind names another
// person rather than holding the row's person's data.
func IsReference(kind string) bool { return kind == "user_ref" || kind == "actor_ref" }

// checkPersonalData applies the rules of personal data to m.
func checkPersonalData(m *pluginv1.Manifest, bad func(format string, args ...any)) {
	pd := m.GetPersonalData()
	if pd == nil {
		return
	}
	if len(pd.Classes) > 0 && !pd.Served {
		bad("personal data: the manifest declares data classes but the plugin does not serve ExportPersonalData, ErasePersonalData and EraseTenantData (personal_data.served): a plugin that holds personal data must export and erase it")
	}
	names := map[string]bool{}
	for _, c := range pd.Classes {
		where := fmt.Sprintf("data class %q", c.Name)
		switch {
		case !DataClassName.MatchString(c.Name):
			bad("%s: a name is lowercase letters, digits and underscores, starting with a letter", where)
		case names[c.Name]:
			bad("%s is declared twice", where)
		}
		names[c.Name] = true
		checkClass(c, where, bad)
		if c.ObjectPrefix != "" && !slices.Contains(m.Capabilities, CapStorage) {
			bad("%s: object prefix %q: declare the capability %q, with which the plugin stores them", where, c.ObjectPrefix, CapStorage)
		}
	}
	for _, tc := range pd.NotPersonal {
		table, column, ok := strings.Cut(tc, ".")
		if !ok || !SQLName.MatchString(table) || !SQLName.MatchString(column) {
			bad("personal data: not personal %q: must be table.column", tc)
		}
	}
}

func checkClass(c *pluginv1.PersonalDataClass, where string, bad func(format string, args ...any)) {
	sqlName := func(what, name string) bool {
		if !SQLName.MatchString(name) {
			bad("%s: %s %q is not a lowercase SQL name", where, what, name)
			return false
		}
		return true
	}
	if c.Table == "" && c.ObjectPrefix == "" {
		bad("%s: names neither a table nor an object prefix", where)
	}
	if c.Table != "" {
		if sqlName("table", c.Table) && strings.HasPrefix(c.Table, "edulure_") {
			bad("%s: table %s is the kernel's, not the plugin's", where, c.Table)
		}
	}
	if c.Subject != "" {
		sqlName("subject", c.Subject)
	}
	switch {
	case c.OnErase == "" && c.Subject != "":
		bad("%s: say what erasing a person does to their rows (on_erase: %s)", where, strings.Join(EraseRules, ", "))
	case c.OnErase != "" && !slices.Contains(EraseRules, c.OnErase):
		bad("%s: on_erase %q is not one of %s", where, c.OnErase, strings.Join(EraseRules, ", "))
	}
	refs := 0
	columns := map[string]bool{}
	for _, col := range c.Columns {
		if !sqlName("column", col.Name) {
			continue
		}
		switch {
		case col.Name == c.Subject:
			bad("%s: column %s is the subject: do not list it again", where, col.Name)
		case columns[col.Name]:
			bad("%s: column %s is listed twice", where, col.Name)
		case !slices.Contains(PersonalKinds, col.Kind):
			bad("%s: column %s: kind %q is not one of %s", where, col.Name, col.Kind, strings.Join(PersonalKinds, ", "))
		case IsReference(col.Kind):
			refs++
		case c.OnErase == "keep" && !c.Custom:
			bad("%s: column %s holds %s data, which keep would leave: erase it with delete or anonymise", where, col.Name, col.Kind)
		}
		columns[col.Name] = true
	}
	for _, col := range c.NotPersonal {
		if sqlName("not personal column", col) && (columns[col] || col == c.Subject) {
			bad("%s: column %s is both described and not personal", where, col)
		}
	}
	if c.Table != "" && c.Subject == "" && refs == 0 && !c.Custom {
		bad("%s: names no subject column and no column naming a person: whose data is it?", where)
	}
	if th := c.GetThrough(); th != nil && (th.Column != "" || th.Table != "" || th.Key != "") {
		if sqlName("through column", th.Column) && sqlName("through table", th.Table) && sqlName("through key", th.Key) && c.Subject == "" {
			bad("%s: through %s needs the subject column of %s", where, th.Table, th.Table)
		}
	}
	if p := c.ObjectPrefix; p != "" {
		switch {
		case !ObjectPrefix.MatchString(p) || strings.Contains(p, "..") || strings.Contains(p, "//"):
			bad("%s: object prefix %q: a relative path of letters, digits, '_', '.', '-' and '/', without '..'", where, p)
		case !strings.Contains(p, "{user_id}"):
			bad("%s: object prefix %q must hold {user_id}, where the person's ID goes", where, p)
		}
	}
}
