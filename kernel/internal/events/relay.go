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
		woken := map[string]bool{}
		more := false
		for _, src := range s.sources() {
			if !all && !dirty[src.name] {
				continue
			}
			n, subs, err := s.relayBatch(ctx, src)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				s.logger.Error("relaying events failed; retrying", "source", src.name, "error", err)
				more = true
				time.Sleep(jitter(250 * time.Millisecond))
				continue
			}
			for sub := range subs {
				woken[sub] = true
			}
			if n == s.opts.BatchSize { // there may be more
				more = true
				s.mu.Lock()
				s.dirty[src.name] = true
				s.mu.Unlock()
			}
		}
		if len(woken) > 0 {
			s.wakeDispatchers(woken)
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

type outboxRow struct {
	seq  int64
	typ  string
	data []byte
}

// The batch statements below join unnest($n) rather than test "= ANY($n)":
// once Postgres switches a prepared statement to its generic plan it
// cannot tell how many elements the array holds, and scans the whole table
// testing each row against the array, which made each relayed event cost
// a scan of the event log (150 µs an event at 20,000 events); a join on
// unnest is planned as index lookups.

// relayBatch moves up to BatchSize events of one source into the event log,
// creating their deliveries (and, through the hooks, their job runs) in the
// same transaction, and returns how many it moved and which subscribers got
// deliveries.
func (s *Service) relayBatch(ctx context.Context, src source) (int, map[string]bool, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // no-op after Commit
	rows, err := tx.Query(ctx, "SELECT seq, type, data FROM "+src.table+" ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED", s.opts.BatchSize)
	if err != nil {
		if isUndefinedTable(err) { // a plugin provisioned before events existed, or dropped
			return 0, nil, nil
		}
		return 0, nil, err
	}
	var batch []outboxRow
	var r outboxRow
	_, err = pgx.ForEachRow(rows, []any{&r.seq, &r.typ, &r.data}, func() error {
		batch = append(batch, r)
		r = outboxRow{}
		return nil
	})
	if err != nil || len(batch) == 0 {
		return 0, nil, err
	}
	seqs := make([]int64, len(batch))
	var rejSeqs []int64
	var rejWhy []string
	for i, r := range batch {
		seqs[i] = r.seq
		if why := src.check(r.typ, r.data); why != "" {
			rejSeqs, rejWhy = append(rejSeqs, r.seq), append(rejWhy, why)
			s.logger.Warn("event refused", "source", src.name, "type", r.typ, "reason", why)
		}
	}
	var logged []int64
	rows, err = tx.Query(ctx, `
		INSERT INTO kernel.events (id, type, source, tenant_id, actor, request_id, data, occurred_at, rejected, traceparent)
		SELECT o.id, o.type, $1, o.tenant_id, o.actor, o.request_id, o.data, o.occurred_at, r.why, o.traceparent
		FROM unnest($2::bigint[]) AS b(seq)
		JOIN `+src.table+` o ON o.seq = b.seq
		LEFT JOIN unnest($3::bigint[], $4::text[]) AS r(seq, why) ON r.seq = o.seq
		ORDER BY o.seq
		ON CONFLICT (id) DO NOTHING
		RETURNING seq`, src.name, seqs, rejSeqs, rejWhy)
	if err != nil {
		return 0, nil, fmt.Errorf("writing the event log: %w", err)
	}
	if logged, err = pgx.CollectRows(rows, pgx.RowTo[int64]); err != nil {
		return 0, nil, fmt.Errorf("writing the event log: %w", err)
	}
	subs, err := s.fanOut(ctx, tx, logged)
	if err != nil {
		return 0, nil, err
	}
	if s.hooks != nil && len(logged) > 0 {
		if err := s.hooks.EventsRelayed(ctx, tx, logged); err != nil {
			return 0, nil, fmt.Errorf("starting event-triggered jobs: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, "DELETE FROM "+src.table+" o USING unnest($1::bigint[]) AS b(seq) WHERE o.seq = b.seq", seqs); err != nil {
		return 0, nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, nil, err
	}
	return len(batch), subs, nil
}

// subscription is one plugin's interest in one type, for the fan-out query.
type subscription struct {
	plugin      string
	typ         string
	ordered     bool
	maxAttempts int
	byDefault   bool // the plugin is enabled for institutions that chose nothing
}

func (s *Service) subscriptions() []subscription {
	var out []subscription
	for _, p := range s.sup.Loaded() {
		for _, sub := range p.Manifest.Subscriptions {
			max := int(sub.MaxAttempts)
			if max <= 0 {
				max = s.opts.MaxAttempts
			}
			out = append(out, subscription{plugin: p.Name, typ: sub.Type, ordered: sub.Ordered, maxAttempts: max, byDefault: p.EnabledByDefault})
		}
	}
	return out
}

// fanOut creates one delivery per (accepted event, subscribed plugin that the
// event's institution has enabled); platform events go to every subscriber.
// seqs were logged by the calling transaction, so none has deliveries yet
// (no ON CONFLICT: its speculative insertion cost every row a second probe
// of the unique index).
func (s *Service) fanOut(ctx context.Context, tx pgx.Tx, seqs []int64) (map[string]bool, error) {
	subs := s.subscriptions()
	if len(subs) == 0 || len(seqs) == 0 {
		return nil, nil
	}
	var plugins, types []string
	var ordered, defaults []bool
	var maxes []int32
	for _, sub := range subs {
		plugins, types = append(plugins, sub.plugin), append(types, sub.typ)
		ordered, defaults = append(ordered, sub.ordered), append(defaults, sub.byDefault)
		maxes = append(maxes, int32(sub.maxAttempts))
	}
	rows, err := tx.Query(ctx, `
		INSERT INTO kernel.deliveries (event_seq, subscriber, tenant_id, ordered, max_attempts)
		SELECT e.seq, s.plugin, e.tenant_id, s.ordered, s.max_attempts
		FROM unnest($1::bigint[]) AS b(seq)
		JOIN kernel.events e ON e.seq = b.seq
		JOIN unnest($2::text[], $3::text[], $4::bool[], $5::int[], $6::bool[]) AS s(plugin, type, ordered, max_attempts, by_default)
			ON s.type = e.type
		LEFT JOIN kernel.tenant_plugins tp ON tp.tenant_id = e.tenant_id AND tp.plugin = s.plugin
		WHERE e.rejected IS NULL
			AND (e.tenant_id IS NULL OR COALESCE(tp.enabled, s.by_default))
		ORDER BY e.seq
		RETURNING subscriber`, seqs, plugins, types, ordered, maxes, defaults)
	if err != nil {
		return nil, fmt.Errorf("creating deliveries: %w", err)
	}
	woken := map[string]bool{}
	var sub string
	_, err = pgx.ForEachRow(rows, []any{&sub}, func() error { woken[sub] = true; return nil })
	if err != nil {
		return nil, fmt.Errorf("creating deliveries: %w", err)
	}
	return woken, nil
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
