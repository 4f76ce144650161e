package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/supervisor"
	"github.com/edulure/edulure/sdk/schema"
	"github.com/edulure/edulure/sdk/storage"
)

// Tx is the relay's transaction as hooks see it.
type Tx = pgx.Tx

// source is one outbox.
type source struct {
	name  string // "kernel" or the plugin's name
	table string // qualified table name
	// check says why an event of this source is refused, or "".
	check func(typ string, data []byte) string
}

// KernelSource is the source name of the kernel's own events.
const KernelSource = "kernel"

var kernelTypes = func() map[string]bool {
	m := map[string]bool{}
	for _, t := range outbox.Types {
		m[t.Type] = true
	}
	return m
}()

func (s *Service) sources() []source {
	out := []source{{name: KernelSource, table: "kernel.outbox", check: func(typ string, _ []byte) string {
		if !kernelTypes[typ] {
			return fmt.Sprintf("%s is not a kernel event type", typ)
		}
		return ""
	}}}
	for _, p := range s.sup.Loaded() {
		m := p.Manifest
		out = append(out, source{
			name:  p.Name,
			table: pgx.Identifier{storage.Spec{Plugin: p.Name}.Schema(), storage.Outbox}.Sanitize(),
			check: func(typ string, data []byte) string { return checkPublished(m, typ, data) },
		})
	}
	return out
}

// checkPublished re-checks a plugin's event as the SDK did when publishing,
// since a plugin could write its outbox without the SDK.
func checkPublished(m *supervisor.Manifest, typ string, data []byte) string {
	sch, ok := m.EventSchema(typ)
	if !ok {
		return fmt.Sprintf("plugin %s does not declare %s in its manifest's publishes", m.Name, typ)
	}
	doc, err := schema.Decode(data)
	if err != nil {
		return "data is not JSON: " + err.Error()
	}
	if vs := schema.Validate(sch, doc, "data"); len(vs) > 0 {
		parts := make([]string, len(vs))
		for i, v := range vs {
			parts[i] = v.Field + " " + v.Message
		}
		return "data does not match the schema: " + strings.Join(parts, "; ")
	}
	return ""
}

// relay moves events from the outboxes to the event log until ctx ends.
func (s *Service) relay(ctx context.Context) {
	s.markAllDirty()
	poll := time.NewTimer(s.opts.Poll)
	defer poll.Stop()
	for {
		s.mu.Lock()
		dirty := s.dirty
		s.dirty = map[string]bool{}
		s.mu.Unlock()
		all := dirty["*"]
		relayed, more := false, false
		triggers := s.jobTriggers()
		for _, src := range s.sources() {
			if !all && !dirty[src.name] {
				continue
			}
			n, err := s.relayBatch(ctx, src, triggers)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.logger.Error("relaying events failed; retrying", "source", src.name, "error", err)
				more = true
				time.Sleep(jitter(250 * time.Millisecond))
				continue
			}
			relayed = relayed || n > 0
			if n == s.opts.BatchSize { // there may be more
				more = true
				s.mu.Lock()
				s.dirty[src.name] = true
				s.mu.Unlock()
			}
		}
		if relayed {
			s.logAppended()
		}
		if more {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wakeRelay:
		case <-poll.C:
			s.mu.Lock()
			s.dirty["*"] = true
			s.mu.Unlock()
			poll.Reset(s.opts.Poll)
		}
	}
}

// logAppended wakes the dispatchers after the relay appended to the log:
// this replica's at once, the other replicas' with a NOTIFY when they hold
// some of the subscribers' leases.
func (s *Service) logAppended() {
	s.wakeDispatchers(nil, false)
	s.mu.Lock()
	local := len(s.dispatch)
	s.mu.Unlock()
	subscribers := 0
	for _, p := range s.sup.Loaded() {
		if len(p.Manifest.Subscriptions) > 0 {
			subscribers++
		}
	}
	if local < subscribers {
		s.passOnWake(wakeDeliver)
	}
}

// appendLock is the transaction-level advisory lock under which the relay
// appends to the log (an arbitrary constant). Holding it from before the
// first seq is drawn until the commit makes the log's order the order in
// which its events become visible: a reader that sees seq n sees every
// smaller seq that will ever commit, which is what lets a cursor be a
// single number. Relay transactions are short (a batch of up to BatchSize
// events in one statement), so the lock costs little even when several
// replicas relay.
const appendLock = 0x6564756c_6c6f6721 // "edullog!"

// The batch statements below join unnest($n) rather than test "= ANY($n)":
// once Postgres switches a prepared statement to its generic plan it
// cannot tell how many elements the array holds, and scans the whole table
// testing each row against the array, which made each relayed event cost
// a scan of the event log (150 µs an event at 20,000 events); a join on
// unnest is planned as index lookups.

// relayBatch moves up to BatchSize events of one source into the event log
// (and, through the hooks, starts the jobs they trigger), and returns how
// many it moved. It reads the oldest outbox rows and checks them, then one
// statement takes the append lock, deletes those rows and inserts them
// into the log in their outbox order, stamped with the time they entered
// the log and marked when the checks refused them: a crash anywhere moves
// the batch or none of it, and a batch costs two round trips. When some
// of its events start jobs, the move and the jobs' runs share a
// transaction. (Outbox rows are never changed once written, and a second
// relay of the same outbox — two replicas for a moment — blocks on the
// rows the first deletes and finds them gone.)
func (s *Service) relayBatch(ctx context.Context, src source, triggers map[string]bool) (int, error) {
	rows, err := s.pool.Query(ctx, "SELECT seq, type, data FROM "+src.table+" ORDER BY seq LIMIT $1", s.opts.BatchSize)
	if err != nil {
		if isUndefinedTable(err) { // a plugin provisioned before events existed, or dropped
			return 0, nil
		}
		return 0, err
	}
	var seqs, rejSeqs []int64
	var rejWhy []string
	trigger, enabling := false, false
	var seq int64
	var typ string
	var data []byte
	_, err = pgx.ForEachRow(rows, []any{&seq, &typ, &data}, func() error {
		seqs = append(seqs, seq)
		if why := src.check(typ, data); why != "" {
			rejSeqs, rejWhy = append(rejSeqs, seq), append(rejWhy, why)
			s.logger.Warn("event refused", "source", src.name, "type", typ, "reason", why)
		} else {
			trigger = trigger || triggers[typ]
			enabling = enabling || (src.name == KernelSource && typ == outbox.PluginEnabled)
		}
		return nil
	})
	if err != nil || len(seqs) == 0 {
		return 0, err
	}
	head := `
		WITH appending AS (SELECT pg_advisory_xact_lock($5)),
		moved AS (
			DELETE FROM ` + src.table + ` o USING unnest($2::bigint[]) AS b(seq) WHERE o.seq = b.seq
			RETURNING o.*)`
	insert := `
		INSERT INTO kernel.events (id, type, source, tenant_id, actor, request_id, data, occurred_at, relayed_at, rejected, traceparent)
		SELECT o.id, o.type, $1, o.tenant_id, o.actor, o.request_id, o.data, o.occurred_at, clock_timestamp(), r.why, o.traceparent
		FROM appending, moved o
		LEFT JOIN unnest($3::bigint[], $4::text[]) AS r(seq, why) ON r.seq = o.seq
		ORDER BY o.seq`
	move := head + insert + `
		RETURNING seq, rejected IS NULL`
	if enabling {
		// An institution's enablement gets its place in the log in the
		// same transaction (cursor.go, readLiveColumns).
		move = head + `,
		logged AS (` + insert + `
			RETURNING seq, id, type, rejected),
		placed AS (
			UPDATE kernel.tenant_plugins tp SET enabled_seq = l.seq FROM logged l
			WHERE l.type = '` + outbox.PluginEnabled + `' AND tp.enabled_event = l.id)
		SELECT seq, rejected IS NULL FROM logged ORDER BY seq`
	}
	args := []any{src.name, seqs, rejSeqs, rejWhy, int64(appendLock)}
	if !trigger || s.hooks == nil {
		tag, err := s.pool.Exec(ctx, move, args...)
		if err != nil {
			return 0, s.appendFailed(ctx, err)
		}
		return int(tag.RowsAffected()), nil
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	rows, err = tx.Query(ctx, move, args...)
	if err != nil {
		return 0, s.appendFailed(ctx, err)
	}
	var logged []int64
	var accepted bool
	if _, err := pgx.ForEachRow(rows, []any{&seq, &accepted}, func() error {
		if accepted {
			logged = append(logged, seq)
		}
		return nil
	}); err != nil {
		return 0, s.appendFailed(ctx, err)
	}
	if len(logged) > 0 {
		if err := s.hooks.EventsRelayed(ctx, tx, logged); err != nil {
			return 0, fmt.Errorf("starting event-triggered jobs: %w", err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, err
	}
	return len(seqs), nil
}

// jobTriggers are the event types that start a job of a loaded plugin:
// only their events go to the hook.
func (s *Service) jobTriggers() map[string]bool {
	out := map[string]bool{}
	for _, p := range s.sup.Loaded() {
		for _, j := range p.Manifest.Jobs {
			if j.OnEvent != "" {
				out[j.OnEvent] = true
			}
		}
	}
	return out
}

// appendFailed explains a failed append; when the log had no partition for
// the time, it creates the coming days' partitions so that the retry works.
func (s *Service) appendFailed(ctx context.Context, err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23514" && strings.Contains(pe.Message, "no partition") {
		if perr := s.ensurePartitions(context.WithoutCancel(ctx), time.Now()); perr != nil {
			return fmt.Errorf("writing the event log: %w (and creating its partitions: %v)", err, perr)
		}
	}
	return fmt.Errorf("writing the event log: %w", err)
}

// TypeInfo is one entry of the event type catalogue.
type TypeInfo struct {
	Type        string `json:"type"`
	Description string `json:"description"`
	Publisher   string `json:"publisher" doc:"kernel, or the publishing plugin's name; empty when that plugin is not loaded"`
	// Schema is the JSON Schema of the data, as written.
	Schema      map[string]json.RawMessage `json:"schema,omitempty" doc:"The JSON Schema of the event's data; absent when the publisher is not loaded."`
	Subscribers []string                   `json:"subscribers"`
}

// jsonObject is a JSON object's members as written; nil for anything else.
func jsonObject(raw []byte) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	return m
}

// Catalogue lists every event type the kernel and the loaded plugins
// publish, and types subscribed to whose publisher is not loaded.
func (s *Service) Catalogue() []TypeInfo {
	byType := map[string]*TypeInfo{}
	var order []string
	add := func(t TypeInfo) {
		if _, ok := byType[t.Type]; !ok {
			order = append(order, t.Type)
			t.Subscribers = []string{}
			byType[t.Type] = &t
		}
	}
	for _, t := range outbox.Types {
		add(TypeInfo{Type: t.Type, Description: t.Description, Publisher: KernelSource, Schema: jsonObject(t.Schema)})
	}
	loaded := s.sup.Loaded()
	for _, p := range loaded {
		for _, e := range p.Manifest.Publishes {
			add(TypeInfo{Type: e.Type, Description: e.Description, Publisher: p.Name, Schema: jsonObject(e.SchemaJson)})
		}
	}
	for _, p := range loaded {
		for _, sub := range p.Manifest.Subscriptions {
			add(TypeInfo{Type: sub.Type, Description: "published by a plugin that is not loaded", Publisher: ""})
			byType[sub.Type].Subscribers = append(byType[sub.Type].Subscribers, p.Name)
		}
	}
	out := make([]TypeInfo, 0, len(order))
	for _, t := range order {
		out = append(out, *byType[t])
	}
	return out
}

func isUndefinedTable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42P01"
}
