package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk"
)

// Ingestion (docs/telemetry.md, "Ingestion"): a batch of statements is
// checked one by one and partly accepted, each statement answered with its
// own result. In one transaction, holding the people's consent locks
// (consent.go), the statements that pass are copied (COPY) into a
// temporary staging table and merged: INSERT ... ON CONFLICT DO NOTHING
// into statement_ids, the index of every ID the institution has stored,
// and the winners into the partitioned statements table. A loser is a
// duplicate when its content's SHA-256 equals the stored one's, and a
// conflict otherwise; the stored row never changes.

// The statuses of a statement's result.
const (
	StatusStored    = "stored"
	StatusDuplicate = "duplicate"
	StatusConflict  = "conflict"
	StatusRefused   = "refused"
)

// The reasons of refusals other than consent (consent.go has those).
const (
	ReasonInvalid          = "invalid_statement"
	ReasonDuplicateInBatch = "duplicate_in_batch"
	ReasonActorNotCaller   = "actor_not_caller"
	ReasonNotAMember       = "not_a_member"
	ReasonTooOld           = "timestamp_too_old"
	ReasonInFuture         = "timestamp_in_future"
	ReasonIDConflict       = "id_conflict"
)

// IngestRequest is the body of POST /api/v1/telemetry/events.
type IngestRequest struct {
	Statements []map[string]any `json:"statements" minItems:"1" maxItems:"1000" doc:"xAPI 2.0 statements; each is checked and answered on its own."`
	Purpose    string           `json:"purpose,omitempty" pattern:"^[a-z][a-z0-9_]{0,39}$" doc:"The purpose the statements are collected for; default: the institution's default_purpose."`
	Source     string           `json:"source,omitempty" pattern:"^[a-z][a-z0-9_.-]{0,62}$" doc:"A server-side source of the institution's allowed_sources, sending for any member (telemetry.event.ingest); absent: the caller's own statements."`
}

// ingestBody is IngestRequest as the handler reads it: each statement as
// its bytes.
type ingestBody struct {
	Statements []json.RawMessage `json:"statements"`
	Purpose    string            `json:"purpose"`
	Source     string            `json:"source"`
}

// EventResult is what became of one statement of a batch.
type EventResult struct {
	Index  int              `json:"index" doc:"The statement's position in the batch, from 0."`
	ID     string           `json:"id,omitempty"`
	Status string           `json:"status" enum:"stored,duplicate,conflict,refused" doc:"stored: new; duplicate: this id was stored before with the same content, nothing changed; conflict: this id was stored before with other content, which stays; refused: see reason."`
	Reason string           `json:"reason,omitempty" doc:"Why it was refused or conflicts: invalid_statement, duplicate_in_batch, actor_not_caller, not_a_member, timestamp_too_old, timestamp_in_future, no_policy, no_consent, consent_withdrawn, not_consented_at_time, id_conflict."`
	Detail string           `json:"detail,omitempty"`
	Errors []sdk.FieldError `json:"errors,omitempty" doc:"The statement's wrong fields (invalid_statement)."`
}

// IngestResult answers a batch.
type IngestResult struct {
	Stored     int           `json:"stored"`
	Duplicates int           `json:"duplicates"`
	Conflicts  int           `json:"conflicts"`
	Refused    int           `json:"refused"`
	Results    []EventResult `json:"results"`
}

// Statement is a stored statement, as its person reads it back.
type Statement struct {
	ID        string          `json:"id" format:"uuid"`
	Stored    time.Time       `json:"stored"`
	Timestamp time.Time       `json:"timestamp"`
	Verb      string          `json:"verb"`
	ObjectID  string          `json:"object_id"`
	Purpose   string          `json:"purpose"`
	Source    string          `json:"source"`
	Statement json.RawMessage `json:"statement" doc:"The statement as stored (normalised)."`
}

// StatementQuery filters a person's statements.
type StatementQuery struct {
	UserID string `query:"user_id" format:"uuid" doc:"Another member's (telemetry.consent.manage); default: the caller's own."`
}

func (p *Plugin) ingestRoutes() []sdk.Route {
	return []sdk.Route{
		{Method: "POST", Path: "/api/v1/telemetry/events", Permission: PermEventSelf,
			Summary: "Send a batch of xAPI statements; each is stored, found a duplicate or conflict, or refused with its reason",
			Request: IngestRequest{}, Response: IngestResult{}, Handler: p.ingestBatch},
		{Method: "GET", Path: "/api/v1/telemetry/events", Permission: PermEventSelf, Query: StatementQuery{}, Paginated: true,
			Summary: "A person's stored statements, newest first", Response: sdk.Page[Statement]{}, Handler: p.listStatements},
	}
}

// pending is a checked statement waiting to be stored, with its index in
// the batch.
type pending struct {
	idx int
	st  *statement
}

func (p *Plugin) ingestBatch(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	cfg, err := sdk.Config[Config](ctx, req)
	if err != nil {
		return nil, err
	}
	if !cfg.IngestionEnabled {
		return nil, sdk.Errorf(sdk.ErrConflict, "the institution has turned statement ingestion off").WithCode("ingestion_disabled")
	}
	var in ingestBody
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	purpose := in.Purpose
	if purpose == "" {
		purpose = cfg.DefaultPurpose
	}
	source := "client"
	if in.Source != "" {
		if !req.Principal.Can(PermEventIngest) {
			return nil, sdk.Errorf(sdk.ErrForbidden, "sending statements from a server-side source needs %s", PermEventIngest).WithCode("not_allowed")
		}
		if !cfg.sourceAllowed(in.Source) {
			return nil, sdk.Errorf(sdk.ErrForbidden, "source %q is not among the institution's allowed_sources", in.Source).WithCode("source_not_allowed")
		}
		source = in.Source
	} else if !req.Principal.IsUser() {
		return nil, sdk.Invalid(sdk.FieldError{Field: "source", Message: "is required for an API key: it sends from a server-side source"})
	}

	results := make([]EventResult, len(in.Statements))
	parsed := make([]*statement, len(in.Statements))
	seen := make(map[string]int, len(in.Statements))
	for i, raw := range in.Statements {
		results[i] = EventResult{Index: i}
		st, errs := parseStatement(raw, cfg.AccountHomePage)
		if errs != nil {
			results[i].ID = looseID(raw)
			refuse(&results[i], ReasonInvalid, "the statement is not valid", errs)
			continue
		}
		parsed[i] = st
		results[i].ID = st.ID
		seen[st.ID]++
	}
	// The actors: the caller alone, or with a source the members it names.
	others := map[string]bool{}
	for i, st := range parsed {
		switch {
		case st == nil:
		case seen[st.ID] > 1:
			refuse(&results[i], ReasonDuplicateInBatch, "the id appears more than once in the batch: none of them is stored", nil)
			parsed[i] = nil
		case source == "client" && st.UserID != req.Principal.UserID:
			refuse(&results[i], ReasonActorNotCaller, "the actor must be the caller's own account; server-side sources send for others", nil)
			parsed[i] = nil
		case source != "client" && st.UserID != req.Principal.UserID:
			others[st.UserID] = true
		}
	}
	members, err := membership(ctx, req, others)
	if err != nil {
		return nil, err
	}
	var batch []pending
	for i, st := range parsed {
		if st == nil {
			continue
		}
		if others[st.UserID] && !members[st.UserID] {
			refuse(&results[i], ReasonNotAMember, "the actor's account names no member of the institution", nil)
			continue
		}
		batch = append(batch, pending{idx: i, st: st})
	}
	if err := p.store(ctx, req, cfg, purpose, source, batch, results); err != nil {
		return nil, err
	}
	out := IngestResult{Results: results}
	for _, r := range results {
		switch r.Status {
		case StatusStored:
			out.Stored++
		case StatusDuplicate:
			out.Duplicates++
		case StatusConflict:
			out.Conflicts++
		default:
			out.Refused++
		}
		p.metrics.statements.WithLabelValues(r.Status, r.Reason).Inc()
	}
	return sdk.JSON(http.StatusOK, out)
}

func refuse(r *EventResult, reason, detail string, errs []sdk.FieldError) {
	r.Status, r.Reason, r.Detail, r.Errors = StatusRefused, reason, detail, errs
}

// looseID is a refused statement's id, when it has a readable one.
func looseID(raw json.RawMessage) string {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	s, _ := v.ID.(string)
	if n, ok := sdk.NormalizeUUID(s); ok {
		return n
	}
	return ""
}

// membership asks the kernel which of people are members, eight at a time.
func membership(ctx context.Context, s sdk.Scope, people map[string]bool) (map[string]bool, error) {
	out := make(map[string]bool, len(people))
	if len(people) == 0 {
		return out, nil
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		first error
		sem   = make(chan struct{}, 8)
	)
	for person := range people {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := s.Host().Membership(ctx, s.Tenant(), person)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
			}
			out[person] = err == nil && m.Member
		}()
	}
	wg.Wait()
	return out, first
}

// stagingTable is the session's staging table: COPY lands there, and
// commit empties it. (COPY straight into statements is not an option for
// the plugin: Postgres refuses COPY FROM into a table under row-level
// security, SQLSTATE 0A000; a temporary table has none.)
const stagingTable = `CREATE TEMP TABLE IF NOT EXISTS telemetry_staging (
	id uuid NOT NULL, user_id uuid NOT NULL, occurred_at timestamptz NOT NULL, verb text NOT NULL, object_id text NOT NULL,
	object_type text, course_id uuid, cohort_id uuid, score_scaled double precision, success boolean, completion boolean,
	duration_ms bigint, policy_version integer NOT NULL, consent_id uuid, raw jsonb NOT NULL, sha256 bytea NOT NULL
) ON COMMIT DELETE ROWS`

var stagingColumns = []string{"id", "user_id", "occurred_at", "verb", "object_id", "object_type", "course_id", "cohort_id",
	"score_scaled", "success", "completion", "duration_ms", "policy_version", "consent_id", "raw", "sha256"}

// mergeStaged moves the staged statements in: new IDs into statement_ids
// (the ON CONFLICT), their statements into the partitioned table, their
// hours into the rollup queue. It returns the IDs stored.
const mergeStaged = `
	WITH fresh AS (
		INSERT INTO statement_ids (tenant_id, id, sha256, stored_at)
		SELECT $1, id, sha256, $2 FROM telemetry_staging
		ON CONFLICT DO NOTHING
		RETURNING id
	), stored AS (
		INSERT INTO statements (tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, object_type, course_id, cohort_id,
			score_scaled, success, completion, duration_ms, purpose, policy_version, consent_id, source, raw)
		SELECT $1, $2, s.id, s.user_id, s.occurred_at, s.verb, s.object_id, s.object_type, s.course_id, s.cohort_id,
			s.score_scaled, s.success, s.completion, s.duration_ms, $3, s.policy_version, s.consent_id, $4, s.raw
		FROM telemetry_staging s JOIN fresh USING (id)
		ON CONFLICT DO NOTHING
		RETURNING id, occurred_at
	), queued AS (
		INSERT INTO rollup_queue (tenant_id, hour)
		SELECT DISTINCT $1::uuid, date_trunc('hour', occurred_at, 'UTC') FROM stored
	)
	SELECT id::text FROM stored`

// store stores a checked batch for the scope's institution, filling in
// each statement's result. It is the one way statements get in: the route
// and the platform's events both use it.
func (p *Plugin) store(ctx context.Context, s sdk.Scope, cfg Config, purpose, source string, batch []pending, results []EventResult) error {
	if len(batch) == 0 {
		return nil
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		err = s.Tx(ctx, func(tx pgx.Tx) error { return p.storeTx(ctx, tx, s.Tenant(), cfg, purpose, source, batch, results) })
		if !missingPartition(err) {
			break
		}
		// A day without its partition yet (the maintenance job makes them
		// ahead): make it and try once more.
		if perr := p.ensurePartitions(ctx); perr != nil {
			return errors.Join(err, perr)
		}
	}
	return err
}

func (p *Plugin) storeTx(ctx context.Context, tx pgx.Tx, tenant string, cfg Config, purpose, source string, batch []pending, results []EventResult) error {
	people := make([]string, 0, len(batch))
	seen := map[string]bool{}
	for _, b := range batch {
		if !seen[b.st.UserID] {
			seen[b.st.UserID] = true
			people = append(people, b.st.UserID)
		}
	}
	sort.Strings(people)
	// One round trip: the locks (the institution's ingest lock, which the
	// export's barrier takes exclusively, and each person's consent lock,
	// shared), the staging table, the clock read under the locks, and the
	// people's consent.
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock_shared(ingest_lock_key($1))`, tenant)
	b.Queue(`SELECT pg_advisory_xact_lock_shared(k) FROM (SELECT consent_lock_key($1, u) AS k FROM unnest($2::uuid[]) u ORDER BY 1) s`, tenant, people)
	b.Queue(stagingTable)
	b.Queue(`SELECT clock_timestamp()`)
	br := tx.SendBatch(ctx, b)
	var now time.Time
	for i := 0; i < 3; i++ {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	if err := br.QueryRow().Scan(&now); err != nil {
		br.Close()
		return err
	}
	if err := br.Close(); err != nil {
		return err
	}
	book, err := readConsentBook(ctx, tx, purpose, people, cfg)
	if err != nil {
		return err
	}
	now = now.UTC()
	rows := make([][]any, 0, len(batch))
	staged := make(map[string]pending, len(batch))
	for _, pd := range batch {
		st, r := pd.st, &results[pd.idx]
		*r = EventResult{Index: pd.idx, ID: st.ID}
		switch {
		case st.Timestamp.Before(now.Add(-cfg.maxPast())):
			refuse(r, ReasonTooOld, fmt.Sprintf("the timestamp is more than %d days before the server's time", cfg.MaxPastDays), nil)
			continue
		case st.Timestamp.After(now.Add(cfg.maxFuture())):
			refuse(r, ReasonInFuture, fmt.Sprintf("the timestamp is more than %d seconds after the server's time", cfg.MaxFutureSeconds), nil)
			continue
		}
		by, reason := book.judge(st.UserID, st.Timestamp, now)
		if reason != "" {
			refuse(r, reason, consentDetail(reason, purpose), nil)
			continue
		}
		var consentID any
		if by.decisionID != "" {
			consentID = uuidBytes(by.decisionID)
		}
		rows = append(rows, []any{uuidBytes(st.ID), uuidBytes(st.UserID), st.Timestamp, st.Verb, st.ObjectID, nullText(st.ObjectType),
			nullUUID(st.CourseID), nullUUID(st.CohortID), st.ScoreScaled, st.Success, st.Completion, st.DurationMS,
			by.version, consentID, st.Raw, st.SHA256[:]})
		staged[st.ID] = pd
	}
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"telemetry_staging"}, stagingColumns, pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("copying statements into staging: %w", err)
	}
	ids, err := tx.Query(ctx, mergeStaged, tenant, now, purpose, source)
	if err != nil {
		return err
	}
	stored, err := pgx.CollectRows(ids, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range stored {
		results[staged[id].idx].Status = StatusStored
		p.metrics.delay.Observe(now.Sub(staged[id].st.Timestamp).Seconds())
		delete(staged, id)
	}
	if len(stored) > 0 {
		p.metrics.newest.Set(float64(now.UnixNano()) / 1e9)
	}
	if len(staged) == 0 {
		return nil
	}
	// The rest were stored before: the same content or not.
	again := make([]string, 0, len(staged))
	for id := range staged {
		again = append(again, id)
	}
	prior, err := tx.Query(ctx, `SELECT id::text, sha256 FROM statement_ids WHERE id = ANY($1::uuid[])`, again)
	if err != nil {
		return err
	}
	err = forEachRow(prior, func(r pgx.Rows) error {
		var id string
		var sum []byte
		if err := r.Scan(&id, &sum); err != nil {
			return err
		}
		pd := staged[id]
		res := &results[pd.idx]
		if string(sum) == string(pd.st.SHA256[:]) {
			res.Status, res.Detail = StatusDuplicate, "this id was stored before with the same content: nothing changed"
		} else {
			res.Status, res.Reason, res.Detail = StatusConflict, ReasonIDConflict, "this id was stored before with other content, which stays as it was"
		}
		return nil
	})
	return err
}

func consentDetail(reason, purpose string) string {
	switch reason {
	case ReasonNoPolicy:
		return fmt.Sprintf("the institution has no consent policy for %q", purpose)
	case ReasonNoConsent:
		return fmt.Sprintf("the person has not consented to %q", purpose)
	case ReasonWithdrawn:
		return fmt.Sprintf("the person has withdrawn (or refused) consent to %q", purpose)
	default:
		return fmt.Sprintf("the person did not consent to %q at the statement's timestamp", purpose)
	}
}

func missingPartition(err error) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23514" && strings.Contains(pg.Message, "no partition")
}

func forEachRow(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func uuidBytes(s string) [16]byte { return uuid.MustParse(s) }

func nullUUID(s string) any {
	if s == "" {
		return nil
	}
	return uuidBytes(s)
}

func nullText(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// ensurePartitions makes the partitions of yesterday (UTC) to three days
// ahead, if missing.
func (p *Plugin) ensurePartitions(ctx context.Context) error {
	_, err := p.env.DB.Pool.Exec(ctx, `SELECT ensure_statement_partitions((now() AT TIME ZONE 'UTC')::date - 1, 5)`)
	if err != nil {
		return fmt.Errorf("making statement partitions: %w", err)
	}
	return nil
}

func (p *Plugin) listStatements(ctx context.Context, req *sdk.Request) (*sdk.Response, error) {
	q, err := sdk.Query[StatementQuery](req)
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
	var items []Statement
	err = req.Tx(ctx, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `
			SELECT id::text, stored_at, occurred_at, verb, object_id, purpose, source, raw FROM statements
			WHERE user_id = $1 AND (NOT $2 OR (stored_at, id) < ($3, $4::uuid))
			ORDER BY stored_at DESC, id DESC LIMIT $5`, person, more, at, nilUUIDIfEmpty(after), page.Limit+1)
		var err error
		items, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Statement, error) {
			var s Statement
			err := r.Scan(&s.ID, &s.Stored, &s.Timestamp, &s.Verb, &s.ObjectID, &s.Purpose, &s.Source, &s.Statement)
			s.Stored, s.Timestamp = s.Stored.UTC(), s.Timestamp.UTC()
			return s, err
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return sdk.JSON(http.StatusOK, sdk.NewPage(items, page.Limit, func(s Statement) []string { return sdk.TimeKey(s.Stored, s.ID) }))
}
