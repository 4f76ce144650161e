package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/edulure/edulure/kernel/internal/devmail"
)

// The retention rows (issue "Governance plugin"): an institution's
// retention executed through the kernel, as a governance plugin asks it
// (a plugin with the capability "retention" calls Host.ApplyRetention; here
// the test plugin "govt" does, from a route), against the equivalent plain
// SQL run from this process.
//
// retention.telemetry_partitions: retentionStatements expired statements
// over 10 days stored 40 to 50 days ago; the telemetry plugin drops the
// day partitions, which hold only this institution's statements (the run
// has one institution). The baseline deletes the same rows with one
// DELETE ... WHERE stored_at < cutoff.
//
// retention.messaging_posts: retentionPosts expired posts; the messaging
// plugin deletes them in batches of 1,000, each its own transaction that
// locks its rows, clears their revisions, mentions and attachments, then
// deletes them. The baseline does the same in one statement.

var (
	retentionStatements = 1_000_000
	retentionPosts      = 100_000
)

func (e *env) retentionRows(ctx context.Context) ([]Row, error) {
	statements, posts := retentionStatements, retentionPosts
	if e.opts.Smoke {
		statements, posts = 20_000, 2_000
	}
	if e.telemetry == nil || e.messaging == nil {
		e.printf("  the telemetry or messaging plugin is not built: retention rows skipped")
		return nil, nil
	}
	mc, err := devmail.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	tv, err := manifestVersion(e.telemetry.path)
	if err != nil {
		return nil, err
	}
	mv, err := manifestVersion(e.messaging.path)
	if err != nil {
		return nil, err
	}
	entries := append(e.basePlugins(),
		pluginEntry{name: "telemetry", bin: *e.telemetry, version: tv},
		pluginEntry{name: "messaging", bin: *e.messaging, version: mv, config: fmt.Sprintf(`{ smtp_host = "127.0.0.1", smtp_port = %d, smtp_security = "none" }`, mc.SMTPPort)},
		pluginEntry{name: "govt", bin: e.plugins["govt"], allow: `"retention", "grants", "sign"`, timeout: "5m"})
	if err := e.reload(entries...); err != nil {
		return nil, fmt.Errorf("loading the plugins: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck
	cutoff := time.Now().UTC().AddDate(0, 0, -30)
	apply := func(plugin, class string) (int64, time.Duration, error) {
		var res struct {
			Affected int64 `json:"affected"`
		}
		start := time.Now()
		err := e.call("POST", "/api/v1/govt/gov/retention", e.tokens["admin"],
			map[string]any{"plugin": plugin, "class": class, "cutoff": cutoff.Format(time.RFC3339), "action": "delete"}, 200, &res)
		return res.Affected, time.Since(start), err
	}

	// Telemetry: the statements, straight into 10 day partitions.
	seedStatements := func() error {
		first := time.Now().UTC().AddDate(0, 0, -50).Truncate(24 * time.Hour)
		if _, err := e.pool.Exec(ctx, `SELECT plugin_telemetry.ensure_statement_partitions($1::date, 10)`, first.Format(time.DateOnly)); err != nil {
			return err
		}
		_, err := e.pool.Exec(ctx, `INSERT INTO plugin_telemetry.statements
			(tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, purpose, policy_version, source, raw)
			SELECT $1, $2::timestamptz + (g % 10) * interval '1 day' + interval '1 hour', gen_random_uuid(), gen_random_uuid(),
				$2::timestamptz, 'http://adlnet.gov/expapi/verbs/experienced', 'lesson', 'analytics', 1, 'bench', '{}'
			FROM generate_series(1, $3) g`, e.tenantID, first, statements)
		return err
	}
	if err := seedStatements(); err != nil {
		return nil, fmt.Errorf("seeding statements: %w", err)
	}
	start := time.Now()
	tag, err := e.pool.Exec(ctx, `DELETE FROM plugin_telemetry.statements WHERE tenant_id = $1 AND stored_at < $2`, e.tenantID, cutoff)
	if err != nil {
		return nil, err
	}
	plainTel := time.Since(start)
	if tag.RowsAffected() != int64(statements) {
		return nil, fmt.Errorf("the plain DELETE removed %d statements, want %d", tag.RowsAffected(), statements)
	}
	if err := seedStatements(); err != nil {
		return nil, fmt.Errorf("seeding statements: %w", err)
	}
	n, tel, err := apply("telemetry", "statements")
	if err != nil {
		return nil, err
	}
	if n != int64(statements) {
		return nil, fmt.Errorf("retention removed %d statements, want %d", n, statements)
	}

	// Messaging: the posts, straight into one space.
	seedPosts := func() error {
		_, err := e.pool.Exec(ctx, `
			WITH s AS (
				INSERT INTO plugin_messaging.spaces (tenant_id, id, kind, course_id, title, created_at)
				VALUES ($1, gen_random_uuid(), 'course', gen_random_uuid(), 'Archive', $2) RETURNING id)
			INSERT INTO plugin_messaging.posts (tenant_id, id, space_id, author_id, kind, body, body_text, created_at)
			SELECT $1, gen_random_uuid(), s.id, gen_random_uuid(), 'post', '<p>An old post.</p>', 'An old post.', $2
			FROM s, generate_series(1, $3)`, e.tenantID, cutoff.AddDate(-1, 0, 0), posts)
		return err
	}
	if err := seedPosts(); err != nil {
		return nil, fmt.Errorf("seeding posts: %w", err)
	}
	start = time.Now()
	tag, err = e.pool.Exec(ctx, `
		WITH p AS (SELECT id FROM plugin_messaging.posts WHERE tenant_id = $1 AND created_at < $2),
		c AS (SELECT id FROM plugin_messaging.comments WHERE tenant_id = $1 AND post_id IN (SELECT id FROM p)),
		r AS (DELETE FROM plugin_messaging.revisions WHERE tenant_id = $1 AND (target_id IN (SELECT id FROM p) OR target_id IN (SELECT id FROM c))),
		m AS (DELETE FROM plugin_messaging.mentions WHERE tenant_id = $1 AND (target_id IN (SELECT id FROM p) OR target_id IN (SELECT id FROM c))),
		a AS (DELETE FROM plugin_messaging.attachments WHERE tenant_id = $1 AND post_id IN (SELECT id FROM p))
		DELETE FROM plugin_messaging.posts WHERE tenant_id = $1 AND id IN (SELECT id FROM p)`, e.tenantID, cutoff)
	if err != nil {
		return nil, err
	}
	plainMsg := time.Since(start)
	if tag.RowsAffected() != int64(posts) {
		return nil, fmt.Errorf("the plain DELETE removed %d posts, want %d", tag.RowsAffected(), posts)
	}
	if err := seedPosts(); err != nil {
		return nil, fmt.Errorf("seeding posts: %w", err)
	}
	n, msg, err := apply("messaging", "posts")
	if err != nil {
		return nil, err
	}
	if n != int64(posts) {
		return nil, fmt.Errorf("retention removed %d posts, want %d", n, posts)
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	t := row("retention.telemetry_partitions", ms(tel), "ms",
		fmt.Sprintf("DELETE of the same %d statements by one statement in this process", statements), ms(plainTel), ratioAtMost(1))
	t.Note = fmt.Sprintf("ApplyRetention of telemetry's statements through the kernel (POST to a plugin holding the capability retention, Host.ApplyRetention, the telemetry plugin): %d expired statements in 10 day partitions of this institution only, dropped whole", statements)
	m := row("retention.messaging_posts", ms(msg), "ms",
		fmt.Sprintf("the same deletion of %d posts (with revisions, mentions, attachments) by one statement in this process", posts), ms(plainMsg), ratioAtMost(3))
	m.Note = fmt.Sprintf("ApplyRetention of messaging's posts through the kernel: %d expired posts, in batches of 1,000, each its own transaction (lock, cascade, delete)", posts)
	return []Row{t, m}, nil
}
