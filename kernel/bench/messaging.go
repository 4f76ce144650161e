package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/smtp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/edulure/edulure/kernel/internal/devmail"
)

// The messaging plugin's fan-out: an announcement to an institution of
// fanoutRecipients members, from the POST that publishes it to the last
// email accepted by a local SMTP server (the kernel relays the event, the
// plugin makes a notification per member in one transaction, publishes
// the queued event, the kernel starts the fan-out job, which claims,
// renders and sends over smtp_connections connections and records each
// outcome). The baseline sends the same number of messages of the same
// size to the same server from one process over as many connections,
// with nothing else to do (net/smtp).

const (
	fanoutRecipients  = 2000
	fanoutConnections = 2
)

func (e *env) messagingRows(ctx context.Context) ([]Row, error) {
	fanoutRecipients, sseStreams, sseRounds := fanoutRecipients, sseStreams, sseRounds
	if e.opts.Smoke {
		fanoutRecipients, sseStreams, sseRounds = 50, 20, 2
	}
	if e.messaging == nil {
		e.printf("  the messaging plugin is not built: messaging.* skipped")
		return nil, nil
	}
	mc, err := devmail.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	version, err := manifestVersion(e.messaging.path)
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`{ smtp_host = "127.0.0.1", smtp_port = %d, smtp_security = "none", email_per_minute = 100000, smtp_connections = %d }`, mc.SMTPPort, fanoutConnections)
	if err := e.reload(append(e.basePlugins(), pluginEntry{name: "messaging", bin: *e.messaging, version: version, config: cfg})...); err != nil {
		return nil, fmt.Errorf("loading the messaging plugin: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck
	// The plugin's directory, as the kernel's membership events would fill it.
	if _, err := e.pool.Exec(ctx, `
		WITH p AS (
			INSERT INTO plugin_messaging.people (user_id, email, display_name, email_verified, institutions)
			SELECT gen_random_uuid(), 'reader' || g || '@bench.test', 'Reader ' || g, true, ARRAY[$1::uuid] FROM generate_series(1, $2) g
			RETURNING user_id)
		INSERT INTO plugin_messaging.members (tenant_id, user_id, roles) SELECT $1, user_id, '{learner}' FROM p`, e.tenantID, fanoutRecipients); err != nil {
		return nil, fmt.Errorf("seeding members: %w", err)
	}
	var spaces struct {
		Items []struct {
			ID   string `json:"id"`
			Kind string `json:"kind"`
		} `json:"items"`
	}
	if err := e.call("GET", "/api/v1/spaces?kind=institution", e.tokens["admin"], nil, 200, &spaces); err != nil || len(spaces.Items) != 1 {
		return nil, fmt.Errorf("the institution's space: %v %v", err, spaces)
	}
	before := mc.Received()
	start := time.Now()
	if err := e.call("POST", "/api/v1/spaces/"+spaces.Items[0].ID+"/posts", e.tokens["admin"],
		map[string]any{"body": "<p>The library opens late on Friday.</p>", "kind": "announcement"}, 201, nil); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	var first time.Duration
	for mc.Received()-before < fanoutRecipients {
		if first == 0 && mc.Received() > before {
			first = time.Since(start)
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("only %d of %d emails arrived in 2 minutes", mc.Received()-before, fanoutRecipients)
		}
		time.Sleep(5 * time.Millisecond)
	}
	elapsed := time.Since(start)
	rate := float64(fanoutRecipients) / elapsed.Seconds()

	raw := mc.Raw()
	baseStart := time.Now()
	if err := plainSends(mc.SMTPAddr, raw, fanoutRecipients, fanoutConnections); err != nil {
		return nil, fmt.Errorf("baseline: %w", err)
	}
	baseRate := float64(fanoutRecipients) / time.Since(baseStart).Seconds()
	r := row("messaging.fanout_emails_per_s", rate, "emails/s", fmt.Sprintf("plain SMTP sends of the same message, %d connections", fanoutConnections), baseRate, ratioAtLeast(0.1))
	r.Note = fmt.Sprintf("an announcement to %d members: POST → first email in %s, last in %s (event relay, %d notifications in one transaction, job start, claim, render, send, ledger); the baseline sends the same %d-byte message %d times to the same server", fanoutRecipients, first.Round(time.Millisecond), elapsed.Round(time.Millisecond), fanoutRecipients, len(raw), fanoutRecipients)
	sendPhase := elapsed - first
	send := row("messaging.fanout_send_emails_per_s", float64(fanoutRecipients-1)/sendPhase.Seconds(), "emails/s",
		fmt.Sprintf("plain SMTP sends of the same message, %d connections", fanoutConnections), baseRate, ratioAtLeast(0.3))
	send.Note = fmt.Sprintf("the sending alone (first email → last, %s): claims with a lease, re-checks of preferences and membership, fair-share reservation, rendering with a signed unsubscribe link each, SMTP, and the ledger's outcome per email", sendPhase.Round(time.Millisecond))
	lat, err := e.sseLatencyRows(ctx, spaces.Items[0].ID, sseStreams, sseRounds)
	if err != nil {
		return nil, fmt.Errorf("SSE latency: %w", err)
	}
	return append([]Row{r, send}, lat...), nil
}

// sseStreams and sseRounds: the bench learner holds 1,000 inbox streams
// open through the kernel (each on a connection of its own); the admin
// mentions them in 20 posts, one at a time; each notification is
// delivered in the app, the commit's NOTIFY wakes the plugin's listener,
// which reads it once and hands it to every stream. Latency is from the
// POST being sent to each stream reading the event.
const (
	sseStreams = 1000
	sseRounds  = 20
)

func (e *env) sseLatencyRows(ctx context.Context, space string, sseStreams, sseRounds int) ([]Row, error) {
	var learner string
	if err := e.pool.QueryRow(ctx, "SELECT id::text FROM kernel.users WHERE email = 'learner@bench.test'").Scan(&learner); err != nil {
		return nil, err
	}
	if _, err := e.pool.Exec(ctx, `
		WITH p AS (INSERT INTO plugin_messaging.people (user_id, email, display_name, email_verified, institutions)
			VALUES ($2, 'learner@bench.test', 'Learner', true, ARRAY[$1::uuid]) ON CONFLICT DO NOTHING RETURNING user_id)
		INSERT INTO plugin_messaging.members (tenant_id, user_id, roles) SELECT $1, user_id, '{learner}' FROM p`, e.tenantID, learner); err != nil {
		return nil, err
	}
	host := strings.TrimPrefix(e.url, "http://")
	request := []byte("GET /api/v1/notifications/stream HTTP/1.1\r\nHost: " + host + "\r\nAuthorization: Bearer " + e.tokens["learner"] + "\r\n\r\n")
	type arrival struct {
		round int
		at    time.Time
	}
	arrivals := make(chan arrival, sseStreams*sseRounds)
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range sseStreams {
		c, err := net.Dial("tcp", host)
		if err != nil {
			return nil, err
		}
		conns = append(conns, c)
		if _, err := c.Write(request); err != nil {
			return nil, err
		}
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return nil, err
		}
		if res.StatusCode != 200 {
			body, _ := io.ReadAll(io.LimitReader(res.Body, 512))
			return nil, fmt.Errorf("GET /api/v1/notifications/stream: %s %s", res.Status, body)
		}
		go func() {
			sc := bufio.NewScanner(res.Body)
			for sc.Scan() {
				line := sc.Text()
				if _, body, ok := strings.Cut(line, "data: "); ok {
					var it struct {
						Body string `json:"body"`
					}
					if json.Unmarshal([]byte(body), &it) == nil {
						var round int
						if _, err := fmt.Sscanf(it.Body, "ping %d", &round); err == nil {
							arrivals <- arrival{round, time.Now()}
						}
					}
				}
			}
		}()
	}
	sent := make([]time.Time, sseRounds)
	var lat []float64
	for round := range sseRounds {
		sent[round] = time.Now()
		if err := e.call("POST", "/api/v1/spaces/"+space+"/posts", e.tokens["admin"],
			map[string]any{"body": fmt.Sprintf("ping %d", round), "format": "text", "mentions": []string{learner}}, 201, nil); err != nil {
			return nil, err
		}
		timeout := time.After(time.Minute)
		for got := 0; got < sseStreams; {
			select {
			case a := <-arrivals:
				lat = append(lat, float64(a.at.Sub(sent[a.round]).Microseconds())/1000)
				if a.round == round {
					got++
				}
			case <-timeout:
				return nil, fmt.Errorf("round %d: %d of %d streams got the notification in a minute", round, got, sseStreams)
			}
		}
	}
	sort.Float64s(lat)
	pct := func(q float64) float64 { return lat[int(q*float64(len(lat)-1))] }
	p50 := row("messaging.sse_latency_p50", pct(0.5), "ms", "", 0, atMost(250))
	p50.Note = fmt.Sprintf("%d inbox streams of one person open through the kernel; %d mentions, one at a time: POST sent → each stream reads the notification (%d samples; p99 in the next row)", sseStreams, sseRounds, len(lat))
	p99 := row("messaging.sse_latency_p99", pct(0.99), "ms", "", 0, atMost(1000))
	return []Row{p50, p99}, nil
}

// plainSends sends msg n times over conns SMTP connections at once.
func plainSends(addr string, msg []byte, n, conns int) error {
	var wg sync.WaitGroup
	errs := make([]error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl, err := smtp.Dial(addr)
			if err != nil {
				errs[c] = err
				return
			}
			defer cl.Close()
			if err := cl.Hello("localhost"); err != nil {
				errs[c] = err
				return
			}
			for i := c; i < n; i += conns {
				if err := cl.Mail("bench@bench.test"); err != nil {
					errs[c] = err
					return
				}
				if err := cl.Rcpt(fmt.Sprintf("plain%d@bench.test", i)); err != nil {
					errs[c] = err
					return
				}
				w, err := cl.Data()
				if err == nil {
					_, err = w.Write(msg)
				}
				if err == nil {
					err = w.Close()
				}
				if err != nil {
					errs[c] = err
					return
				}
			}
			errs[c] = cl.Quit()
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
