package events

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/edulure/edulure/sdk/storage"
)

// The log is partitioned by the UTC day an event entered it
// (kernel.events_pYYYYMMDD; kernel.events_history holds what was there when
// the log was first partitioned). The holder of the maintenance lease
// creates the coming days' partitions and prunes, every PruneEvery:
//
//   - a partition whose last day is older than the retention, once every
//     cursor of every loaded subscriber has passed its last event (a cursor
//     of a plugin no longer loaded does not hold the log back; such a
//     plugin, loaded again, resumes at the oldest event still kept);
//   - delivery rows of failures that later succeeded or were skipped,
//     older than the retention (dead letters stay until replayed or
//     discarded);
//   - each subscriber's inbox entries for events older than the retention
//     and handled before it: a redelivery can come only from the log or a
//     delivery row, and an event past the retention is in neither (unless
//     a dead letter of it is replayed, which the handler's own keys must
//     then make harmless).
//
// The retention is therefore also the catch-up window.

// partitionsAhead is how many days of partitions exist beyond today.
const partitionsAhead = 3

// maintain keeps the log's partitions and prunes it until ctx ends.
func (s *Service) maintain(ctx context.Context) {
	for {
		if err := s.ensurePartitions(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.logger.Error("creating the event log's partitions failed", "error", err)
		}
		if _, err := s.Prune(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.logger.Error("pruning the event log failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitter(s.opts.PruneEvery)):
		}
	}
}

func partitionName(day time.Time) string { return "events_p" + day.Format("20060102") }

// ensurePartitions creates the partitions of the days from now's to
// partitionsAhead days later that are missing.
func (s *Service) ensurePartitions(ctx context.Context, now time.Time) error {
	day := now.UTC().Truncate(24 * time.Hour)
	for i := 0; i <= partitionsAhead; i++ {
		from := day.AddDate(0, 0, i)
		to := from.AddDate(0, 0, 1)
		_, err := s.pool.Exec(ctx, fmt.Sprintf(`CREATE TABLE IF NOT EXISTS kernel.%s PARTITION OF kernel.events FOR VALUES FROM ('%s') TO ('%s')`,
			pgx.Identifier{partitionName(from)}.Sanitize(), from.Format(time.RFC3339), to.Format(time.RFC3339)))
		if err != nil && !isDuplicate(err) {
			return fmt.Errorf("creating partition %s: %w", partitionName(from), err)
		}
	}
	return nil
}

// Pruned says what one pruning removed.
type Pruned struct {
	Partitions []string // dropped partitions of the log
	Held       string   // why an old partition was kept, if one was
	Rows       int64    // settled delivery rows
	Inbox      int64    // inbox entries, all subscribers
}

var partitionBound = regexp.MustCompile(`TO \('([^']+)'\)`)

// Prune drops what the retention no longer keeps as of now (see above).
func (s *Service) Prune(ctx context.Context, now time.Time) (Pruned, error) {
	var out Pruned
	cutoff := now.Add(-s.opts.Retention)
	var loaded []string
	for _, p := range s.sup.Loaded() {
		if len(p.Manifest.Subscriptions) > 0 {
			loaded = append(loaded, p.Name)
		}
	}
	// The smallest position of a cursor that owes something: the log must
	// keep every event after it.
	var low *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(position) FROM kernel.event_cursors WHERE subscriber = ANY($1)`, loaded).Scan(&low); err != nil {
		return out, err
	}
	rows, err := s.pool.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'kernel.events'::regclass ORDER BY c.relname`)
	if err != nil {
		return out, err
	}
	type partition struct {
		name string
		end  time.Time
	}
	var parts []partition
	var name, bound string
	if _, err := pgx.ForEachRow(rows, []any{&name, &bound}, func() error {
		m := partitionBound.FindStringSubmatch(bound)
		if m == nil {
			return nil
		}
		for _, layout := range []string{"2006-01-02 15:04:05-07", "2006-01-02 15:04:05-07:00", "2006-01-02 15:04:05-07:00:00"} {
			if end, err := time.Parse(layout, m[1]); err == nil {
				parts = append(parts, partition{name, end})
				break
			}
		}
		return nil
	}); err != nil {
		return out, err
	}
	for _, p := range parts {
		if !p.end.Before(cutoff) {
			continue
		}
		table := "kernel." + pgx.Identifier{p.name}.Sanitize()
		var last *int64
		if err := s.pool.QueryRow(ctx, "SELECT max(seq) FROM "+table).Scan(&last); err != nil {
			return out, err
		}
		if last != nil && (low == nil || *low < *last) {
			out.Held = fmt.Sprintf("partition %s (events up to seq %d) waits for a cursor at seq %d", p.name, *last, deref(low))
			s.logger.Warn("the event log keeps a partition past the retention: a subscriber has not read it yet", "partition", p.name, "last_seq", *last, "lowest_cursor", deref(low))
			continue
		}
		if _, err := s.pool.Exec(ctx, "ALTER TABLE kernel.events DETACH PARTITION "+table+"; DROP TABLE "+table); err != nil {
			return out, fmt.Errorf("dropping partition %s: %w", p.name, err)
		}
		out.Partitions = append(out.Partitions, p.name)
		s.logger.Info("dropped a partition of the event log past the retention", "partition", p.name)
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM kernel.deliveries WHERE status IN ('delivered', 'skipped') AND updated_at < $1`, cutoff)
	if err != nil {
		return out, err
	}
	out.Rows = tag.RowsAffected()
	// An inbox's key is the event's UUIDv7, whose first 48 bits are its
	// time in milliseconds: the primary key finds the old ones.
	var edge uuid.UUID
	ms := uint64(cutoff.UnixMilli())
	for i := range 6 {
		edge[i] = byte(ms >> (40 - 8*i))
	}
	for _, name := range loaded {
		table := pgx.Identifier{storage.Spec{Plugin: name}.Schema(), storage.Inbox}.Sanitize()
		for {
			tag, err := s.pool.Exec(ctx, `DELETE FROM `+table+` WHERE event_id IN (
				SELECT event_id FROM `+table+` WHERE event_id < $1 AND handled_at < $2 LIMIT 10000)`, edge, cutoff)
			if err != nil {
				if isUndefinedTable(err) {
					break
				}
				return out, fmt.Errorf("pruning the inbox of %s: %w", name, err)
			}
			out.Inbox += tag.RowsAffected()
			if tag.RowsAffected() < 10000 || ctx.Err() != nil {
				break
			}
		}
	}
	return out, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

// isDuplicate says whether creating a partition failed because it, or one
// covering its range, exists (another replica made it meanwhile).
func isDuplicate(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42P07" || pe.Code == "42P17")
}
