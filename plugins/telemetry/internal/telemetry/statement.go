package telemetry

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/edulure/edulure/sdk"
)

// The statement checks: xAPI 2.0 (IEEE 9274.1.1-2023) statements as
// clients send them, with Edulure's rules on top (docs/telemetry.md,
// "Statements"): the actor is an account whose name is the person's user
// ID, never an email address, an OpenID or a name; the id is the client's
// UUID; timestamp is required; stored and authority are the server's.

// The IRIs Edulure's own statements use, and clients may too.
const (
	// ExtCourseID and ExtCohortID are context extensions naming the course
	// and cohort a statement is about: the aggregates per course read them.
	ExtCourseID = "https://edulure.dev/xapi/extensions/course_id"
	ExtCohortID = "https://edulure.dev/xapi/extensions/cohort_id"

	VerbCompleted = "http://adlnet.gov/expapi/verbs/completed"
	VerbAttempted = "http://adlnet.gov/expapi/verbs/attempted"
	VerbPassed    = "http://adlnet.gov/expapi/verbs/passed"
	VerbFailed    = "http://adlnet.gov/expapi/verbs/failed"
	// VerbPosted and VerbLiked are Activity Streams verbs, as the xAPI
	// registry lists them: a post in a community space, a reaction to one.
	VerbPosted = "http://activitystrea.ms/schema/1.0/post"
	VerbLiked  = "http://activitystrea.ms/schema/1.0/like"

	ActivityLesson     = "http://adlnet.gov/expapi/activities/lesson"
	ActivityCourse     = "http://adlnet.gov/expapi/activities/course"
	ActivityAssessment = "http://adlnet.gov/expapi/activities/assessment"
	ActivityNote       = "http://activitystrea.ms/schema/1.0/note"
	ActivityComment    = "http://activitystrea.ms/schema/1.0/comment"
)

// maxStatementBytes is the largest statement accepted, once normalised.
const maxStatementBytes = 16 << 10

// statement is a checked statement: its normalised form (the raw JSON
// kept, and its SHA-256, the content a replay is compared by) and the
// columns the plugin indexes.
type statement struct {
	ID          string
	UserID      string
	Timestamp   time.Time
	Verb        string
	ObjectID    string
	ObjectType  string // the activity's definition.type; "" when none
	CourseID    string // "" when none
	CohortID    string
	ScoreScaled *float64
	Success     *bool
	Completion  *bool
	DurationMS  *int64
	Raw         []byte
	SHA256      [32]byte
}

// checker collects the field errors of one statement.
type checker struct{ errs []sdk.FieldError }

func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, sdk.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

var (
	languageTag = regexp.MustCompile(`^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$`)
	isoDuration = regexp.MustCompile(`^P(?:(\d+(?:\.\d+)?)W|(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?)$`)
	xapiVersion = regexp.MustCompile(`^(1|2)\.0\.[0-9]+$`)
)

// parseStatement checks one statement of a batch and normalises it. home
// is the homePage every actor account must have. The field errors name
// the statement's own fields ("actor.account.name").
func parseStatement(raw json.RawMessage, home string) (*statement, []sdk.FieldError) {
	c := &checker{}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil || doc == nil {
		return nil, []sdk.FieldError{{Field: "", Message: "must be a JSON object"}}
	}
	if dec.More() {
		return nil, []sdk.FieldError{{Field: "", Message: "must be one JSON object"}}
	}
	s := &statement{}
	for k := range doc {
		switch k {
		case "id", "actor", "verb", "object", "result", "context", "timestamp", "version":
		case "stored", "authority":
			c.fail(k, "is set by the server: leave it out")
		case "attachments":
			c.fail(k, "are not supported")
		default:
			c.fail(k, "is not a statement property")
		}
	}
	// id: the client's UUID.
	if id, ok := str(c, doc, "id", true); ok {
		if n, ok := sdk.NormalizeUUID(id); ok {
			s.ID = n
			doc["id"] = n
		} else {
			c.fail("id", "must be a UUID")
		}
	}
	s.UserID = checkActor(c, doc["actor"], home)
	s.Verb = checkVerb(c, doc["verb"])
	s.ObjectID, s.ObjectType = checkObject(c, doc["object"])
	if r, ok := doc["result"]; ok {
		checkResult(c, s, r)
	}
	if x, ok := doc["context"]; ok {
		checkContext(c, s, x)
	}
	if ts, ok := str(c, doc, "timestamp", true); ok {
		t, err := time.Parse(time.RFC3339Nano, ts)
		switch {
		case err != nil:
			c.fail("timestamp", "must be a date and time in RFC 3339 form with a time zone (2026-01-31T09:30:00Z)")
		case t.Year() < 1970 || t.Year() > 9999:
			c.fail("timestamp", "must be between the years 1970 and 9999")
		default:
			s.Timestamp = t.UTC().Truncate(time.Microsecond)
			doc["timestamp"] = s.Timestamp.Format(time.RFC3339Nano)
		}
	}
	if v, ok := str(c, doc, "version", false); ok && !xapiVersion.MatchString(v) {
		c.fail("version", "must be an xAPI version 1.0.x or 2.0.x")
	}
	if len(c.errs) > 0 {
		return nil, c.errs
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(doc); err != nil {
		return nil, []sdk.FieldError{{Field: "", Message: "cannot be encoded: " + err.Error()}}
	}
	s.Raw = bytes.TrimSuffix(b.Bytes(), []byte("\n"))
	if len(s.Raw) > maxStatementBytes {
		return nil, []sdk.FieldError{{Field: "", Message: fmt.Sprintf("must be at most %d bytes", maxStatementBytes)}}
	}
	s.SHA256 = sha256.Sum256(s.Raw)
	return s, nil
}

// str reads a string property; a missing required one or a value of
// another type is an error.
func str(c *checker, m map[string]any, key string, required bool) (string, bool) {
	return strAt(c, m, key, key, required)
}

func strAt(c *checker, m map[string]any, key, field string, required bool) (string, bool) {
	v, ok := m[key]
	if !ok {
		if required {
			c.fail(field, "is required")
		}
		return "", false
	}
	s, ok := v.(string)
	if !ok {
		c.fail(field, "must be a string")
		return "", false
	}
	if strings.ContainsRune(s, 0) {
		c.fail(field, "must not contain NUL characters")
		return "", false
	}
	return s, true
}

func object(c *checker, v any, field string) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		c.fail(field, "must be an object")
	}
	return m, ok
}

// only refuses properties not in allowed.
func only(c *checker, m map[string]any, field string, allowed ...string) {
	for k := range m {
		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}
		if !found {
			c.fail(field+"."+k, "is not a known property")
		}
	}
}

// iri checks an absolute IRI (a scheme and more), at most 2,048 bytes.
func iri(c *checker, m map[string]any, key, field string, required bool) (string, bool) {
	s, ok := strAt(c, m, key, field, required)
	if !ok {
		return "", false
	}
	if !isIRI(s) {
		c.fail(field, "must be an absolute IRI (https://...)")
		return "", false
	}
	return s, true
}

func isIRI(s string) bool {
	if len(s) == 0 || len(s) > 2048 || !utf8.ValidString(s) || strings.ContainsAny(s, " \t\r\n") {
		return false
	}
	u, err := url.Parse(s)
	return err == nil && u.Scheme != "" && (u.Host != "" || u.Opaque != "")
}

func languageMap(c *checker, v any, field string) {
	m, ok := object(c, v, field)
	if !ok {
		return
	}
	for k, text := range m {
		if !languageTag.MatchString(k) {
			c.fail(field+"."+k, "must be keyed by a language tag (en-US)")
			continue
		}
		if s, ok := text.(string); !ok || strings.ContainsRune(s, 0) {
			c.fail(field+"."+k, "must be a string")
		}
	}
}

func extensions(c *checker, v any, field string) map[string]any {
	m, ok := object(c, v, field)
	if !ok {
		return nil
	}
	for k := range m {
		if !isIRI(k) {
			c.fail(field+"."+k, "must be keyed by an IRI")
		}
	}
	return m
}

// checkActor requires an Agent identified by its account, and returns the
// user ID the account names.
func checkActor(c *checker, v any, home string) string {
	if v == nil {
		c.fail("actor", "is required")
		return ""
	}
	a, ok := object(c, v, "actor")
	if !ok {
		return ""
	}
	for k := range a {
		switch k {
		case "objectType", "account":
		case "mbox", "mbox_sha1sum", "openid":
			c.fail("actor."+k, "must not be sent: the actor is identified by account only")
		case "name":
			c.fail("actor.name", "must not be sent: the account identifies the person")
		case "member":
			c.fail("actor.member", "groups are not supported")
		default:
			c.fail("actor."+k, "is not a known property")
		}
	}
	if t, ok := strAt(c, a, "objectType", "actor.objectType", false); ok && t != "Agent" {
		c.fail("actor.objectType", "must be Agent")
	}
	acc, ok := a["account"]
	if !ok {
		c.fail("actor.account", "is required: {\"homePage\": %q, \"name\": \"<user ID>\"}", home)
		return ""
	}
	m, ok := object(c, acc, "actor.account")
	if !ok {
		return ""
	}
	only(c, m, "actor.account", "homePage", "name")
	if hp, ok := strAt(c, m, "homePage", "actor.account.homePage", true); ok && strings.TrimSuffix(hp, "/") != strings.TrimSuffix(home, "/") {
		c.fail("actor.account.homePage", "must be %s", home)
	}
	name, ok := strAt(c, m, "name", "actor.account.name", true)
	if !ok {
		return ""
	}
	id, ok := sdk.NormalizeUUID(name)
	if !ok {
		c.fail("actor.account.name", "must be the person's user ID (a UUID)")
		return ""
	}
	m["name"] = id
	return id
}

func checkVerb(c *checker, v any) string {
	if v == nil {
		c.fail("verb", "is required")
		return ""
	}
	m, ok := object(c, v, "verb")
	if !ok {
		return ""
	}
	only(c, m, "verb", "id", "display")
	id, _ := iri(c, m, "id", "verb.id", true)
	if d, ok := m["display"]; ok {
		languageMap(c, d, "verb.display")
	}
	return id
}

// checkObject requires an Activity and returns its id and type.
func checkObject(c *checker, v any) (id, typ string) {
	if v == nil {
		c.fail("object", "is required")
		return "", ""
	}
	m, ok := object(c, v, "object")
	if !ok {
		return "", ""
	}
	only(c, m, "object", "objectType", "id", "definition")
	if t, ok := strAt(c, m, "objectType", "object.objectType", false); ok && t != "Activity" {
		c.fail("object.objectType", "must be Activity (agents, groups and sub-statements are not supported)")
	}
	id, _ = iri(c, m, "id", "object.id", true)
	if d, ok := m["definition"]; ok {
		typ = checkDefinition(c, d, "object.definition")
	}
	return id, typ
}

func checkDefinition(c *checker, v any, field string) string {
	d, ok := object(c, v, field)
	if !ok {
		return ""
	}
	only(c, d, field, "name", "description", "type", "moreInfo", "extensions", "interactionType",
		"correctResponsesPattern", "choices", "scale", "source", "target", "steps")
	for _, k := range []string{"name", "description"} {
		if x, ok := d[k]; ok {
			languageMap(c, x, field+"."+k)
		}
	}
	typ, _ := iri(c, d, "type", field+".type", false)
	iri(c, d, "moreInfo", field+".moreInfo", false)
	if x, ok := d["extensions"]; ok {
		extensions(c, x, field+".extensions")
	}
	return typ
}

func checkResult(c *checker, s *statement, v any) {
	m, ok := object(c, v, "result")
	if !ok {
		return
	}
	only(c, m, "result", "score", "success", "completion", "response", "duration", "extensions")
	if x, ok := m["score"]; ok {
		checkScore(c, s, x)
	}
	for _, k := range []string{"success", "completion"} {
		x, ok := m[k]
		if !ok {
			continue
		}
		b, ok := x.(bool)
		if !ok {
			c.fail("result."+k, "must be true or false")
			continue
		}
		if k == "success" {
			s.Success = &b
		} else {
			s.Completion = &b
		}
	}
	strAt(c, m, "response", "result.response", false)
	if d, ok := strAt(c, m, "duration", "result.duration", false); ok {
		ms, err := durationMS(d)
		if err != nil {
			c.fail("result.duration", "must be an ISO 8601 duration (PT1M30S)")
		} else {
			s.DurationMS = &ms
		}
	}
	if x, ok := m["extensions"]; ok {
		extensions(c, x, "result.extensions")
	}
}

func checkScore(c *checker, s *statement, v any) {
	m, ok := object(c, v, "result.score")
	if !ok {
		return
	}
	only(c, m, "result.score", "scaled", "raw", "min", "max")
	num := func(k string) (float64, bool) {
		x, ok := m[k]
		if !ok {
			return 0, false
		}
		n, ok := x.(json.Number)
		if !ok {
			c.fail("result.score."+k, "must be a number")
			return 0, false
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			c.fail("result.score."+k, "must be a finite number")
			return 0, false
		}
		return f, true
	}
	if f, ok := num("scaled"); ok {
		if f < -1 || f > 1 {
			c.fail("result.score.scaled", "must be between -1 and 1")
		} else {
			s.ScoreScaled = &f
		}
	}
	raw, hasRaw := num("raw")
	lo, hasMin := num("min")
	hi, hasMax := num("max")
	if hasMin && hasMax && lo >= hi {
		c.fail("result.score.min", "must be less than max")
	}
	if hasRaw && hasMin && raw < lo {
		c.fail("result.score.raw", "must be at least min")
	}
	if hasRaw && hasMax && raw > hi {
		c.fail("result.score.raw", "must be at most max")
	}
}

func checkContext(c *checker, s *statement, v any) {
	m, ok := object(c, v, "context")
	if !ok {
		return
	}
	for k := range m {
		switch k {
		case "registration", "contextActivities", "revision", "platform", "language", "statement", "extensions":
		case "instructor", "team", "contextAgents", "contextGroups":
			c.fail("context."+k, "is not supported: a statement names no one but its actor")
		default:
			c.fail("context."+k, "is not a known property")
		}
	}
	if r, ok := strAt(c, m, "registration", "context.registration", false); ok && !sdk.IsUUID(r) {
		c.fail("context.registration", "must be a UUID")
	}
	for _, k := range []string{"revision", "platform"} {
		strAt(c, m, k, "context."+k, false)
	}
	if l, ok := strAt(c, m, "language", "context.language", false); ok && !languageTag.MatchString(l) {
		c.fail("context.language", "must be a language tag (en-US)")
	}
	if x, ok := m["statement"]; ok {
		if ref, ok := object(c, x, "context.statement"); ok {
			only(c, ref, "context.statement", "objectType", "id")
			if id, ok := strAt(c, ref, "id", "context.statement.id", true); ok && !sdk.IsUUID(id) {
				c.fail("context.statement.id", "must be a UUID")
			}
		}
	}
	if x, ok := m["contextActivities"]; ok {
		if ca, ok := object(c, x, "context.contextActivities"); ok {
			only(c, ca, "context.contextActivities", "parent", "grouping", "category", "other")
			for k, list := range ca {
				field := "context.contextActivities." + k
				items, isList := list.([]any)
				if !isList {
					items = []any{list} // xAPI 1.0 allows one activity
				}
				for i, a := range items {
					f := field
					if isList {
						f = field + "." + strconv.Itoa(i)
					}
					if am, ok := object(c, a, f); ok {
						only(c, am, f, "objectType", "id", "definition")
						iri(c, am, "id", f+".id", true)
						if d, ok := am["definition"]; ok {
							checkDefinition(c, d, f+".definition")
						}
					}
				}
			}
		}
	}
	if x, ok := m["extensions"]; ok {
		ext := extensions(c, x, "context.extensions")
		for key, dst := range map[string]*string{ExtCourseID: &s.CourseID, ExtCohortID: &s.CohortID} {
			v, ok := ext[key]
			if !ok {
				continue
			}
			id, isStr := v.(string)
			n, isID := sdk.NormalizeUUID(id)
			if !isStr || !isID {
				c.fail("context.extensions."+key, "must be a UUID")
				continue
			}
			*dst = n
			ext[key] = n
		}
	}
}

// durationMS reads an ISO 8601 duration (years as 365 days, months as 30).
func durationMS(d string) (int64, error) {
	m := isoDuration.FindStringSubmatch(d)
	if m == nil || d == "P" || strings.HasSuffix(d, "T") {
		return 0, fmt.Errorf("not an ISO 8601 duration")
	}
	units := []float64{7 * 86400, 365 * 86400, 30 * 86400, 86400, 3600, 60, 1}
	var secs float64
	for i, u := range units {
		if m[i+1] == "" {
			continue
		}
		f, err := strconv.ParseFloat(m[i+1], 64)
		if err != nil {
			return 0, err
		}
		secs += f * u
	}
	if secs > 10*365*86400 {
		return 0, fmt.Errorf("longer than ten years")
	}
	return int64(math.Round(secs * 1000)), nil
}
