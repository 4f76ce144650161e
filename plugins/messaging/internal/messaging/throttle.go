package messaging

import (
	"context"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"
)

// Throttling, per channel and per minute. Two limits apply to a send:
//
//   - the institution's own (email_per_minute, push_per_minute);
//   - the installation's (channel_email_per_minute, ...), shared between
//     the institutions waiting to send by max-min fairness: each gets an
//     equal share, and what one does not need goes to the others. So one
//     institution's broadcast of thousands cannot take the channel from
//     another's handful: with 20 a minute, 100 waiting in A and 5 in B,
//     B sends its 5 and A 15 in that minute, whichever runs first.
//
// Demand is what each institution has waiting (send_demand: raised when
// notifications are queued, set to the exact backlog by each fan-out run);
// use is what each sent in the current minute (send_windows). A fan-out
// run reserves before it sends, under a per-channel advisory lock, so
// replicas never overspend a window between them.

// window is the minute t falls in.
func window(t time.Time) time.Time { return t.Truncate(time.Minute) }

// grant is the outcome of a reservation.
type grant struct {
	n      int
	code   string // why fewer than asked: throttled_institution, throttled_channel
	reason string
	until  time.Time // when to try again
}

// demandFresh is how long a waiting institution counts without a fan-out
// run refreshing its demand.
const demandFresh = 10 * time.Minute

// reserve asks for up to want sends on a channel for the institution in
// the current minute.
func (p *Plugin) reserve(ctx context.Context, tenant string, ch Channel, cfg Config, want int, now time.Time) (grant, error) {
	w := window(now)
	g := grant{until: w.Add(time.Minute)}
	if want <= 0 {
		return g, nil
	}
	own, global := cfg.EmailPerMinute, cfg.ChannelEmailPerMin
	if ch == Push {
		own, global = cfg.PushPerMinute, cfg.ChannelPushPerMin
	}
	err := p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('plugin_messaging.send.' || $1, 0))`, string(ch)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `
			SELECT coalesce(w.institution, d.institution)::text, coalesce(w.sent, 0), coalesce(d.waiting, 0)
			FROM (SELECT institution, sent FROM send_windows WHERE channel = $1 AND window_start = $2) w
			FULL JOIN (SELECT institution, waiting FROM send_demand WHERE channel = $1 AND waiting > 0 AND updated_at > $3) d
			  ON d.institution = w.institution`, string(ch), w, now.Add(-demandFresh))
		if err != nil {
			return err
		}
		sent := map[string]int{}
		demand := map[string]int{}
		var inst string
		var s, d int
		if _, err := pgx.ForEachRow(rows, []any{&inst, &s, &d}, func() error {
			sent[inst], demand[inst] = s, s+d
			return nil
		}); err != nil {
			return err
		}
		demand[tenant] = max(demand[tenant], sent[tenant]+want)
		allowed := want
		if own > 0 && own-sent[tenant] < allowed {
			allowed = max(0, own-sent[tenant])
			g.code, g.reason = "throttled_institution", fmt.Sprintf("the institution's limit of %d %s a minute is reached", own, plural(ch))
		}
		if global > 0 {
			total := 0
			for _, v := range sent {
				total += v
			}
			// Institution caps bound each one's demand.
			if own > 0 {
				demand[tenant] = min(demand[tenant], own)
			}
			fair := maxMinShare(demand, global)[tenant] - sent[tenant]
			left := global - total
			if cap := max(0, min(fair, left)); cap < allowed {
				allowed = cap
				g.code = "throttled_channel"
				g.reason = fmt.Sprintf("the %s channel is shared: %d a minute between the institutions waiting, and this one's share is used", ch, global)
			}
		}
		g.n = allowed
		if allowed == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO send_windows (channel, window_start, institution, sent) VALUES ($1, $2, $3, $4)
			ON CONFLICT (channel, window_start, institution) DO UPDATE SET sent = send_windows.sent + excluded.sent`,
			string(ch), w, tenant, allowed)
		return err
	})
	return g, err
}

// release gives back reserved sends that were not made.
func (p *Plugin) release(ctx context.Context, tenant string, ch Channel, n int, now time.Time) error {
	if n <= 0 {
		return nil
	}
	return p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE send_windows SET sent = greatest(0, sent - $4) WHERE channel = $1 AND window_start = $2 AND institution = $3`,
			string(ch), window(now), tenant, n)
		return err
	})
}

// setDemand records what the institution still has waiting on a channel.
func (p *Plugin) setDemand(ctx context.Context, tenant string, ch Channel, waiting int, now time.Time) error {
	return p.env.DB.InTenant(ctx, "", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO send_demand (channel, institution, waiting, updated_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (channel, institution) DO UPDATE SET waiting = excluded.waiting, updated_at = excluded.updated_at`,
			string(ch), tenant, waiting, now)
		return err
	})
}

// maxMinShare divides capacity between demands by max-min fairness
// (water-filling): nobody gets more than they want, and those who want
// more than an equal share split what the others leave.
func maxMinShare(demand map[string]int, capacity int) map[string]int {
	out := map[string]int{}
	keys := make([]string, 0, len(demand))
	for k := range demand {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if demand[keys[i]] != demand[keys[j]] {
			return demand[keys[i]] < demand[keys[j]]
		}
		return keys[i] < keys[j]
	})
	left := capacity
	for i, k := range keys {
		share := int(math.Ceil(float64(left) / float64(len(keys)-i)))
		give := min(demand[k], share, left)
		out[k] = give
		left -= give
	}
	return out
}

func plural(ch Channel) string {
	if ch == Push {
		return "pushes"
	}
	return "emails"
}
