package telemetry

import (
	"context"
	"net/http"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/edulure/edulure/sdk"
)

// Consent: versioned policies per institution and purpose, and each
// person's decisions, append-only. A statement is stored only when its
// person consents to its purpose both at the statement's timestamp and
// when it arrives (docs/telemetry.md, "Consent").
//
// Locking: a decision holds its person's advisory lock
// (consent_lock_key) exclusively while it is written; an ingestion holds
// the lock of every person in its batch, shared, from before it reads
// their decisions until it commits. A decision therefore waits for the
// ingestions already reading, and an ingestion that starts later waits
// for the decision and reads it: no statement is ever judged against a
// state a committed decision has changed. decided_at is taken under the
// lock, so it also orders decisions after the statements stored before.

// PublishPolicy is the body of POST /api/v1/telemetry/policies.
type PublishPolicy struct {
	Purpose string `json:"purpose" pattern:"^[a-z][a-z0-9_]{0,39}$" doc:"What the data is used for: analytics, research, ..."`
	Summary string `json:"summary" minLength:"1" maxLength:"4000" doc:"What the person agrees to, as shown to them."`
}

// Policy is one version of a consent policy.
type Policy struct {
	Purpose   string    `json:"purpose"`
	Version   int       `json:"version" minimum:"1"`
	Summary   string    `json:"summary"`
	CreatedAt time.Time `json:"created_at"`
}

// PolicyList is every version of every policy of the institution.
type PolicyList struct {
	Items []Policy `json:"items"`
}

// RecordConsent is the body of POST /api/v1/telemetry/consents.
type RecordConsent struct {
	Purpose       string `json:"purpose" pattern:"^[a-z][a-z0-9_]{0,39}$"`
	PolicyVersion int    `json:"policy_version" minimum:"1" doc:"A grant names the policy's current version; a withdrawal may name any."`
	Granted       bool   `json:"granted" doc:"true grants consent, false withdraws or refuses it."`
	UserID        string `json:"user_id,omitempty" format:"uuid" doc:"Record the decision of another member (telemetry.consent.manage); default: the caller's own."`
}

// Decision is one recorded consent decision.
type Decision struct {
	ID            string    `json:"id" format:"uuid"`
	UserID        string    `json:"user_id" format:"uuid"`
	Purpose       string    `json:"purpose"`
	PolicyVersion int       `json:"policy_version"`
	Granted       bool      `json:"granted"`
	Source        string    `json:"source" enum:"self,admin" doc:"self: the person decided; admin: recorded on their behalf."`
	DecidedAt     time.Time `json:"decided_at"`
}

// ConsentState is a person's consent to one purpose now.
type ConsentState struct {
	Purpose              string     `json:"purpose"`
	Granted              bool       `json:"granted"`
	Basis                string     `json:"basis" enum:"decision,default,none" doc:"decision: the person's latest decision; default: the institution's default (no decision yet); none: neither."`
	PolicyVersion        int        `json:"policy_version,omitempty" doc:"The version the latest decision named."`
	CurrentPolicyVersion int        `json:"current_policy_version"`
	DecidedAt            *time.Time `json:"decided_at,omitempty"`
}

// ConsentStates is a person's consent to every purpose the institution has
// a policy for.
type ConsentStates struct {
	UserID   string         `json:"user_id" format:"uuid"`
	Purposes []ConsentState `json:"purposes"`
}

// PersonQuery names whose consents or statements to read.
type PersonQuery struct {
	UserID string `query:"user_id" format:"uuid" doc:"Another member's (telemetry.consent.manage); default: the caller's own."`
}

func (p *Plugin) consentRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/telemetry/policies", Permission: PermPolicyManage, Status: http.StatusCreated,
			Summary: "Publish the next version of the consent policy of a purpose", Request: PublishPolicy{}, Response: Policy{}, Handler: p.publishPolicy},
		{Method: "GET", Path: "/api/v1/telemetry/policies", Permission: PermConsentSelf,
			Summary: "Every version of the institution's consent policies, newest first per purpose", Response: PolicyList{}, Handler: p.listPolicies},
		{Method: "POST", Path: "/api/v1/telemetry/consents", Permission: PermConsentSelf, Status: http.StatusCreated,
			Summary: "Record a consent decision (grant or withdrawal); decisions are never changed", Request: RecordConsent{}, Response: Decision{}, Handler: p.recordConsent},
		{Method: "GET", Path: "/api/v1/telemetry/consents", Permission: PermConsentSelf, Query: PersonQuery{},
			Summary: "A person's consent to each purpose now", Response: ConsentStates{}, Handler: p.consentState},
		{Method: "GET", Path: "/api/v1/telemetry/consents/history", Permission: PermConsentSelf, Query: PersonQuery{}, Paginated: true,
			Summary: "A person's consent decisions, newest first", Response: sdk.Page[Decision]{}, Handler: p.consentHistory},
	}
}

func (p *Plugin) publishPolicy(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in PublishPolicy
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if blank(in.Summary) {
		return nil, sdk.Invalid(sdk.FieldError{Field: "summary", Message: "must not be blank"})
	}
	var out Policy
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		// One publisher at a time per purpose: versions have no gaps.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('telemetry.policy:' || $1::text || ':' || $2, 0))`, req.Tenant(), in.Purpose); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `
			INSERT INTO consent_policies (tenant_id, purpose, version, summary, created_by)
			SELECT $1, $2, coalesce(max(version), 0) + 1, $3, $4 FROM consent_policies WHERE purpose = $2
			RETURNING purpose, version, summary, created_at`, req.Tenant(), in.Purpose, in.Summary, req.Principal.Actor()).
			Scan(&out.Purpose, &out.Version, &out.Summary, &out.CreatedAt)
	})
	if err != nil {
		return nil, err
	}
	out.CreatedAt = out.CreatedAt.UTC()
	return sdk.JSON(http.StatusCreated, out)
}

func (p *Plugin) listPolicies(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	out := PolicyList{Items: []Policy{}}
	err := req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT purpose, version, summary, created_at FROM consent_policies ORDER BY purpose, version DESC`)
		var err error
		out.Items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Policy, error) {
			var p Policy
			err := r.Scan(&p.Purpose, &p.Version, &p.Summary, &p.CreatedAt)
			p.CreatedAt = p.CreatedAt.UTC()
			return p, err
		})
		return err
	})
	if out.Items == nil {
		out.Items = []Policy{}
	}
	return jsonOr(http.StatusOK, out, err)
}

// subject is the person a consent route is about: the caller, or with
// telemetry.consent.manage the member user_id names.
func (p *Plugin) subject(ctx context.Context, req *sdk.Request, userID string) (string, error) {
	self := req.Principal.UserID
	if userID == "" || userID == self {
		if !req.Principal.IsUser() {
			return "", sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is required for an API key: it is nobody's own consent"})
		}
		return self, nil
	}
	if !req.Principal.Can(PermConsentManage) {
		return "", sdk.Errorf(sdk.ErrForbidden, "reading or recording another person's consent needs %s", PermConsentManage).WithCode("not_allowed")
	}
	m, err := req.Host().Membership(ctx, req.Tenant(), userID)
	if err != nil {
		return "", err
	}
	if !m.Member {
		return "", sdk.Invalid(sdk.FieldError{Field: "user_id", Message: "is not a member of the institution"}).WithCode("not_a_member")
	}
	return userID, nil
}

func (p *Plugin) recordConsent(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	var in RecordConsent
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	userID, _ := sdk.NormalizeUUID(in.UserID)
	person, err := p.subject(ctx, req, userID)
	if err != nil {
		return nil, err
	}
	source := "self"
	if person != req.Principal.UserID {
		source = "admin"
	}
	var d Decision
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(consent_lock_key($1, $2))`, req.Tenant(), person); err != nil {
			return err
		}
		var current, exists int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0), count(*) FILTER (WHERE version = $2) FROM consent_policies WHERE purpose = $1`,
			in.Purpose, in.PolicyVersion).Scan(&current, &exists); err != nil {
			return err
		}
		switch {
		case current == 0:
			return sdk.Invalid(sdk.FieldError{Field: "purpose", Message: "has no consent policy in this institution"}).WithCode("unknown_purpose")
		case exists == 0:
			return sdk.Invalid(sdk.FieldError{Field: "policy_version", Message: "is not a version of the purpose's policy"}).WithCode("unknown_policy_version")
		case in.Granted && in.PolicyVersion != current:
			return sdk.Errorf(sdk.ErrConflict, "consent can only be granted to the current version of the policy (%d)", current).WithCode("stale_policy_version")
		}
		// decided_at is read under the lock (clock_timestamp, not the
		// transaction's start): later than every statement stored before.
		err := tx.QueryRow(ctx, `
			INSERT INTO consent_decisions (tenant_id, user_id, purpose, policy_version, granted, source, recorded_by, decided_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
			RETURNING id, user_id, purpose, policy_version, granted, source, decided_at`,
			req.Tenant(), person, in.Purpose, in.PolicyVersion, in.Granted, source, req.Principal.Actor()).
			Scan(&d.ID, &d.UserID, &d.Purpose, &d.PolicyVersion, &d.Granted, &d.Source, &d.DecidedAt)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.DecidedAt = d.DecidedAt.UTC()
	p.metrics.consents.WithLabelValues(map[bool]string{true: "granted", false: "withdrawn"}[d.Granted]).Inc()
	return sdk.JSON(http.StatusCreated, d)
}

func (p *Plugin) consentState(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[PersonQuery](req)
	if err != nil {
		return nil, err
	}
	uid, _ := sdk.NormalizeUUID(q.UserID)
	person, err := p.subject(ctx, req, uid)
	if err != nil {
		return nil, err
	}
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	out := ConsentStates{UserID: person, Purposes: []ConsentState{}}
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT p.purpose, p.version, d.granted, d.policy_version, d.decided_at
			FROM (SELECT purpose, max(version) AS version FROM consent_policies GROUP BY purpose) p
			LEFT JOIN LATERAL (
				SELECT granted, policy_version, decided_at FROM consent_decisions
				WHERE user_id = $1 AND purpose = p.purpose ORDER BY decided_at DESC LIMIT 1
			) d ON true
			ORDER BY p.purpose`, person)
		var err error
		out.Purposes, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ConsentState, error) {
			var s ConsentState
			var granted *bool
			var version *int
			err := r.Scan(&s.Purpose, &s.CurrentPolicyVersion, &granted, &version, &s.DecidedAt)
			switch {
			case granted != nil:
				s.Basis, s.Granted, s.PolicyVersion = "decision", *granted, *version
				t := s.DecidedAt.UTC()
				s.DecidedAt = &t
			case cfg.grantsByDefault(s.Purpose):
				s.Basis, s.Granted = "default", true
			default:
				s.Basis = "none"
			}
			return s, err
		})
		return err
	})
	if out.Purposes == nil {
		out.Purposes = []ConsentState{}
	}
	return jsonOr(http.StatusOK, out, err)
}

func (p *Plugin) consentHistory(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[PersonQuery](req)
	if err != nil {
		return nil, err
	}
	page, err := req.Page()
	if err != nil {
		return nil, err
	}
	uid, _ := sdk.NormalizeUUID(q.UserID)
	person, err := p.subject(ctx, req, uid)
	if err != nil {
		return nil, err
	}
	at, after, more, err := page.AfterTime()
	if err != nil {
		return nil, err
	}
	var items []Decision
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT id, user_id, purpose, policy_version, granted, source, decided_at FROM consent_decisions
			WHERE user_id = $1 AND (NOT $2 OR (decided_at, id) < ($3, $4::uuid))
			ORDER BY decided_at DESC, id DESC LIMIT $5`, person, more, at, nilUUIDIfEmpty(after), page.Limit+1)
		var err error
		items, err = pgx.CollectRows(rows, scanDecision)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(d Decision) []string { return sdk.TimeKey(d.DecidedAt, d.ID) }))
}

func scanDecision(r pgx.CollectableRow) (Decision, error) {
	var d Decision
	err := r.Scan(&d.ID, &d.UserID, &d.Purpose, &d.PolicyVersion, &d.Granted, &d.Source, &d.DecidedAt)
	d.DecidedAt = d.DecidedAt.UTC()
	return d, err
}

// The reasons a statement is refused for consent.
const (
	ReasonNoConsent     = "no_consent"            // the person never decided, and the institution's default does not grant
	ReasonWithdrawn     = "consent_withdrawn"     // the person's latest decision refuses consent
	ReasonNotConsentedT = "not_consented_at_time" // consent now, but not at the statement's timestamp (before the first grant, or in a gap)
	ReasonNoPolicy      = "no_policy"             // the purpose has no policy in the institution
)

// decisionRow is a decision as the judge reads it.
type decisionRow struct {
	id        string
	version   int
	granted   bool
	decidedAt time.Time
}

// consentBook is what ingestion knows of a batch's people, read under
// their locks: their decisions for the purpose, oldest first, and the
// institution's default.
type consentBook struct {
	decisions      map[string][]decisionRow
	defaultGranted bool
	policyVersion  int // the purpose's current version; 0: no policy
}

// basis is what a stored statement was admitted under.
type basis struct {
	decisionID string // "" for the default
	version    int
}

// stateAt is the person's consent at t: the latest decision at or before
// t, or the default.
func (b *consentBook) stateAt(person string, t time.Time) (granted bool, by basis, decided bool) {
	ds := b.decisions[person]
	i := sort.Search(len(ds), func(i int) bool { return ds[i].decidedAt.After(t) })
	if i > 0 {
		d := ds[i-1]
		return d.granted, basis{decisionID: d.id, version: d.version}, true
	}
	return b.defaultGranted, basis{version: b.policyVersion}, false
}

// judge decides one statement: stored only with consent at its timestamp
// and now.
func (b *consentBook) judge(person string, at, now time.Time) (basis, string) {
	if b.policyVersion == 0 {
		return basis{}, ReasonNoPolicy
	}
	nowGranted, _, decided := b.stateAt(person, now)
	if !nowGranted {
		if decided {
			return basis{}, ReasonWithdrawn
		}
		return basis{}, ReasonNoConsent
	}
	atGranted, by, _ := b.stateAt(person, at)
	if !atGranted {
		return basis{}, ReasonNotConsentedT
	}
	return by, ""
}

// readConsentBook reads the decisions of people for purpose; the caller
// holds their locks.
func readConsentBook(ctx context.Context, tx pgx.Tx, purpose string, people []string, cfg Config) (*consentBook, error) {
	b := &consentBook{decisions: map[string][]decisionRow{}, defaultGranted: cfg.grantsByDefault(purpose)}
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM consent_policies WHERE purpose = $1`, purpose).Scan(&b.policyVersion); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `
		SELECT user_id::text, id::text, policy_version, granted, decided_at FROM consent_decisions
		WHERE user_id = ANY($1::uuid[]) AND purpose = $2 ORDER BY user_id, decided_at, id`, people, purpose)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var person string
		var d decisionRow
		if err := rows.Scan(&person, &d.id, &d.version, &d.granted, &d.decidedAt); err != nil {
			return nil, err
		}
		b.decisions[person] = append(b.decisions[person], d)
	}
	return b, rows.Err()
}

// jsonOr answers v, or the error.
func jsonOr(status int, v any, err error) (*sdk.Response, error) {
	if err != nil {
		return nil, err
	}
	return sdk.JSON(status, v)
}

func nilUUIDIfEmpty(s string) string {
	if s == "" {
		return "00000000-0000-0000-0000-000000000000"
	}
	return s
}
