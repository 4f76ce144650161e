package storage

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// Suspect is a column that looks personal: the coverage check wants it
// described by a data class, or listed as not personal.
type Suspect struct {
	Table, Column string
	// Why it looks personal.
	Reason string
}

// The coverage heuristic: which columns look personal, by their name,
// comment and type. It errs on the side of asking: a column it flags that
// holds nothing personal is listed as not personal (DataClass.NotPersonal,
// Manifest.NotPersonal), which documents the decision.
var (
	// personRef names a column that names a person: user_id, owner_id,
	// created_by, graded_by_id, author, reviewer_user_id...
	personRef = regexp.MustCompile(`^(user|userid|user_id|author|author_id|owner|owner_id|creator|creator_id|actor|actor_id|` +
		`member_id|learner_id|student_id|instructor_id|teacher_id|person_id|recipient_id|sender_id|reviewer_id|grader_id|` +
		`assignee_id|requester_id|approver_id|customer_id|buyer_id|participant_id)$|_user_id$|_user$|_by$|_by_id$|_author$|_author_id$|_actor$`)
	// personEmail names an email address.
	personEmail = regexp.MustCompile(`(^|_)e_?mail($|_)`)
	// personName names a person's name.
	personName = regexp.MustCompile(`^(display_name|full_name|first_name|last_name|given_name|family_name|middle_name|surname|` +
		`username|login|nickname|preferred_name|legal_name|maiden_name)$|^(user|author|owner|learner|student|instructor|teacher|` +
		`member|person|holder|recipient|sender|contact|customer|participant|reviewer|grader|creator|buyer)_name$`)
	// personContact names contact, network or identity data.
	personContact = regexp.MustCompile(`(^|_)(phone|mobile|telephone|fax|address|street|postcode|postal_code|ip|user_agent)($|_)|` +
		`^(birthday|birth_date|birthdate|date_of_birth|dob|ssn|national_id|passport_number|tax_id)$`)
	// personText names free text about a person.
	personText = regexp.MustCompile(`^(bio|biography|about_me|avatar|avatar_url|photo|photo_url|signature)$`)
	// personalComment is a comment that says the column is personal.
	personalComment = regexp.MustCompile(`(?i)\bpersonal\b`)
	notPersonal     = regexp.MustCompile(`(?i)\bnot personal\b`)
)

// Suspects lists the columns of the catalog that look personal, table by
// table in name order. A column looks personal when
//
//  1. its name says it names a person: user_id, *_user_id, *_user, *_by,
//     *_by_id, author, owner_id, creator_id, actor, member_id, learner_id,
//     student_id, instructor_id, reviewer_id...;
//  2. its name says it holds an email address (email, *_email, email_*),
//     a person's name (display_name, full_name, first_name, last_name,
//     username, nickname, author_name, learner_name, holder_name...),
//     contact, network or identity data (phone, address, ip, user_agent,
//     date_of_birth...) or text about a person (bio, avatar, signature);
//  3. its comment says so (COMMENT ON COLUMN ... IS 'Personal: ...', not
//     "not personal");
//  4. it is free text in a table with a column of 1 to 3: text, varchar,
//     json, jsonb or an array of text, unless its name ends in _id or a
//     CHECK on it alone limits it to a list of values or a pattern (a
//     status, a hash).
//
// Tables the kernel creates (edulure_*) are not the plugin's to describe.
func Suspects(c *Catalog) []Suspect {
	var out []Suspect
	for _, name := range c.Names() {
		if strings.HasPrefix(name, "edulure_") {
			continue
		}
		t := c.Tables[name]
		var found []Suspect
		flagged := map[string]bool{}
		for _, col := range t.Columns {
			if reason := nameReason(col); reason != "" {
				found = append(found, Suspect{Table: name, Column: col.Name, Reason: reason})
				flagged[col.Name] = true
			}
		}
		if len(found) > 0 {
			about := found[0].Column
			for _, col := range t.Columns {
				if flagged[col.Name] || col.Name == "tenant_id" || col.Name == "id" || strings.HasSuffix(col.Name, "_id") ||
					!col.Textual() || col.Constrained {
					continue
				}
				found = append(found, Suspect{Table: name, Column: col.Name,
					Reason: fmt.Sprintf("free text in a table about people (%s looks personal)", about)})
			}
		}
		out = append(out, found...)
	}
	return out
}

func nameReason(col *Column) string {
	n := strings.ToLower(col.Name)
	switch {
	case n == "tenant_id":
		return ""
	case personRef.MatchString(n):
		return "its name says it names a person"
	case personEmail.MatchString(n):
		return "its name says it holds an email address"
	case personName.MatchString(n):
		return "its name says it holds a person's name"
	case personContact.MatchString(n):
		return "its name says it holds contact, network or identity data"
	case personText.MatchString(n):
		return "its name says it is about a person"
	case personalComment.MatchString(col.Comment) && !notPersonal.MatchString(col.Comment):
		return "its comment says it is personal"
	}
	return ""
}

// CheckPersonalData checks a manifest's personal data against the
// catalog of the plugin's schema: every table and column a data class names
// exists, and every column Suspects flags is described (a class's subject
// or one of its columns) or listed as not personal. It returns every
// problem at once, each naming the table and column.
func CheckPersonalData(c *Catalog, pd *pluginv1.PersonalDataManifest) error {
	errs, uncovered := ReviewPersonalData(c, pd)
	if len(uncovered) > 0 {
		missing := make([]string, len(uncovered))
		for i, s := range uncovered {
			missing[i] = fmt.Sprintf("  table %s, column %s: %s", s.Table, s.Column, s.Reason)
		}
		errs = append(errs, fmt.Errorf("columns that look personal are not described by a data class (declare them in Manifest.PersonalData, as a class's Subject or Columns, or list them in NotPersonal if they hold nothing personal):\n%s",
			strings.Join(missing, "\n")))
	}
	return errors.Join(errs...)
}

// ReviewPersonalData is CheckPersonalData's findings apart: errs are the
// classes naming a table or column the schema does not have (the export
// and erasure of the class cannot run), uncovered the columns that look
// personal and that nothing describes (the heuristic's questions). The
// kernel refuses a plugin for the first and warns of the second.
func ReviewPersonalData(c *Catalog, pd *pluginv1.PersonalDataManifest) (errs []error, uncovered []Suspect) {
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	described := map[string]bool{} // table.column
	for _, tc := range pd.GetNotPersonal() {
		table, column, _ := strings.Cut(tc, ".")
		if t := c.Tables[table]; t == nil || t.Column(column) == nil {
			bad("not personal %q: no such column in schema %s", tc, c.Schema)
		}
		described[tc] = true
	}
	for _, cl := range pd.GetClasses() {
		if cl.Table == "" {
			continue
		}
		t := c.Tables[cl.Table]
		if t == nil {
			bad("data class %q: schema %s has no table %q", cl.Name, c.Schema, cl.Table)
			continue
		}
		has := func(what, column string) {
			if t.Column(column) == nil {
				bad("data class %q: table %s has no column %q (%s)", cl.Name, cl.Table, column, what)
			}
			described[cl.Table+"."+column] = true
		}
		if th := cl.GetThrough(); th != nil && th.Column != "" {
			has("through", th.Column)
			parent := c.Tables[th.Table]
			switch {
			case parent == nil:
				bad("data class %q: schema %s has no table %q (through)", cl.Name, c.Schema, th.Table)
			case parent.Column(th.Key) == nil:
				bad("data class %q: table %s has no column %q (through key)", cl.Name, th.Table, th.Key)
			case cl.Subject != "" && parent.Column(cl.Subject) == nil:
				bad("data class %q: table %s has no column %q (subject, through %s)", cl.Name, th.Table, cl.Subject, th.Table)
			}
		} else if cl.Subject != "" {
			has("subject", cl.Subject)
		}
		for _, col := range cl.Columns {
			has(col.Kind, col.Name)
		}
		for _, col := range cl.NotPersonal {
			has("not personal", col)
		}
	}
	for _, s := range Suspects(c) {
		if !described[s.Table+"."+s.Column] {
			uncovered = append(uncovered, s)
		}
	}
	return errs, uncovered
}
