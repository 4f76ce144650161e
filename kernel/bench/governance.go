package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/edulure/edulure/kernel/internal/devmail"
)

// The governance plugin's retention execution (plugins/governance, issue
// "Governance plugin"): an institution's policies expire
// governanceStatements telemetry statements stored 101 to 120 days ago
// (whole day partitions, which the telemetry plugin drops) and
// governancePosts messaging posts written 100 days ago (deleted in
// batches of 1,000 with what hangs off them), against a 90-day policy.
// The execution is DataRetentionJob run through the kernel's jobs API:
// the governance plugin lists the classes, asks each plugin through the
// kernel (Host.ApplyRetention), signs the record with the kernel's key,
// records it, files it as evidence and audits it; the value is the
// execution's own duration as recorded. The baseline is the same data
// seeded again and expired by the equivalent plain SQL, as the database
// superuser, in one transaction: DROP TABLE of the same partitions and
// one DELETE of the posts.

// governanceStatements and governancePosts are the 1 million and
// 100,000 (-governance-statements, -governance-posts set them).
var (
	governanceStatements = 1_000_000
	governancePosts      = 100_000
)

const governanceDays = 20 // day partitions the statements are spread over

func (e *env) governanceRows(ctx context.Context) ([]Row, error) {
	if e.governance == nil || e.telemetry == nil || e.messaging == nil {
		e.printf("  the governance, telemetry or messaging plugin is not built: governance.* skipped")
		return nil, nil
	}
	statements, posts := governanceStatements, governancePosts
	if e.opts.Smoke {
		statements, posts = 20_000, 2_000
	}
	mc, err := devmail.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	var entries []pluginEntry
	for _, p := range []struct {
		name   string
		bin    *built
		config string
		allow  string
	}{
		{"telemetry", e.telemetry, "", ""},
		{"messaging", e.messaging, fmt.Sprintf(`{ smtp_host = "127.0.0.1", smtp_port = %d, smtp_security = "none" }`, mc.SMTPPort), ""},
		// Scheduled runs off: only the measured execution expires anything.
		{"governance", e.governance, `{ retention_enabled = false }`, `"retention", "grants", "sign"`},
	} {
		version, err := manifestVersion(p.bin.path)
		if err != nil {
			return nil, err
		}
		entries = append(entries, pluginEntry{name: p.name, bin: *p.bin, version: version, config: p.config, allow: p.allow})
	}
	if err := e.reload(append(e.basePlugins(), entries...)...); err != nil {
		return nil, fmt.Errorf("loading the governance, telemetry and messaging plugins: %w", err)
	}
	defer e.reload(e.basePlugins()...) //nolint:errcheck

	var me struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := e.call("GET", "/api/v1/me", e.tokens["admin"], nil, 200, &me); err != nil {
		return nil, err
	}
	var spaces struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	if err := e.call("GET", "/api/v1/spaces?kind=institution", e.tokens["admin"], nil, 200, &spaces); err != nil || len(spaces.Items) != 1 {
		return nil, fmt.Errorf("the institution's space: %v %v", err, spaces)
	}
	space := spaces.Items[0].ID
	for _, class := range []string{"telemetry/statements", "messaging/posts"} {
		if err := e.call("PUT", "/api/v1/governance/retention/policies/"+class, e.tokens["admin"], map[string]any{"period_days": 90, "action": "delete"}, 200, nil); err != nil {
			return nil, err
		}
	}

	// seed writes the expired rows: statements over governanceDays day
	// partitions 101 to 120 days ago, posts 100 days ago.
	seed := func() error {
		start := time.Now()
		if _, err := e.pool.Exec(ctx, `SELECT plugin_telemetry.ensure_statement_partitions((now() AT TIME ZONE 'UTC')::date - 120, $1)`, governanceDays); err != nil {
			return err
		}
		if _, err := e.pool.Exec(ctx, `
			WITH g AS (
				SELECT i, ((now() AT TIME ZONE 'UTC')::date - 120 + (i % $3)::integer)::timestamp AT TIME ZONE 'UTC' + (i % 86000) * interval '1 second' AS at,
					md5('learner' || (i % 5000))::uuid AS learner
				FROM generate_series(1, $2::bigint) i
			)
			INSERT INTO plugin_telemetry.statements (tenant_id, stored_at, id, user_id, occurred_at, verb, object_id, duration_ms, purpose, policy_version, source, raw)
			SELECT $1::uuid, at, gen_random_uuid(), learner, at - interval '2 seconds', 'http://adlnet.gov/expapi/verbs/experienced',
				'https://edulure.dev/xapi/activities/x/' || (i % 1000), 30000, 'analytics', 1, 'bench', '{}'::jsonb
			FROM g`, e.tenantID, statements, governanceDays); err != nil {
			return fmt.Errorf("seeding %d statements: %w", statements, err)
		}
		if _, err := e.pool.Exec(ctx, `
			INSERT INTO plugin_messaging.posts (tenant_id, id, space_id, author_id, kind, body, body_text, created_at)
			SELECT $1::uuid, gen_random_uuid(), $2::uuid, $3::uuid, 'post', '<p>Notice ' || i || '</p>', 'Notice ' || i, now() - interval '100 days' - i * interval '1 millisecond'
			FROM generate_series(1, $4::bigint) i`, e.tenantID, space, me.User.ID, posts); err != nil {
			return fmt.Errorf("seeding %d posts: %w", posts, err)
		}
		if _, err := e.pool.Exec(ctx, `ANALYZE plugin_telemetry.statements; ANALYZE plugin_messaging.posts`); err != nil {
			return err
		}
		e.printf("  seeded %d expired statements and %d expired posts (%s)", statements, posts, time.Since(start).Round(time.Second))
		return nil
	}

	// Through the kernel: DataRetentionJob, run on demand.
	if err := seed(); err != nil {
		return nil, err
	}
	cpu := e.cpuTimes()
	start := time.Now()
	var run struct {
		ID string `json:"id"`
	}
	if err := e.call("POST", "/api/v1/jobs/governance/data-retention/runs", e.tokens["admin"], map[string]any{}, 202, &run); err != nil {
		return nil, err
	}
	for {
		var info struct {
			Status     string     `json:"status"`
			FinishedAt *time.Time `json:"finished_at"`
			LastError  *string    `json:"last_error"`
			Output     *string    `json:"output"`
		}
		if err := e.call("GET", "/api/v1/jobs/governance/data-retention/runs/"+run.ID, e.tokens["admin"], nil, 200, &info); err != nil {
			return nil, err
		}
		if info.FinishedAt != nil {
			if info.Status != "succeeded" {
				return nil, fmt.Errorf("DataRetentionJob %s: %v", info.Status, deref(info.LastError))
			}
			e.printf("  DataRetentionJob: %s (%s from the request; %s)", deref(info.Output), time.Since(start).Round(time.Millisecond), e.cpuSince(cpu))
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	var list struct {
		Items []struct {
			ID         string `json:"id"`
			Status     string `json:"status"`
			DurationMs int64  `json:"duration_ms"`
			Affected   int64  `json:"affected"`
		} `json:"items"`
	}
	if err := e.call("GET", "/api/v1/governance/retention/executions?limit=1", e.tokens["admin"], nil, 200, &list); err != nil || len(list.Items) != 1 {
		return nil, fmt.Errorf("the execution's record: %v %v", err, list)
	}
	ex := list.Items[0]
	if ex.Status != "succeeded" || ex.Affected != int64(statements+posts) {
		return nil, fmt.Errorf("execution %s is %s and affected %d rows, want %d", ex.ID, ex.Status, ex.Affected, statements+posts)
	}
	viaKernel := time.Duration(ex.DurationMs) * time.Millisecond

	// The baseline: the same rows again, expired by plain SQL.
	if err := seed(); err != nil {
		return nil, err
	}
	var parts []string
	rows, err := e.pool.Query(ctx, `SELECT 'plugin_telemetry.' || quote_ident(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'plugin_telemetry.statements'::regclass
		AND c.relname BETWEEN 'statements_' || to_char((now() AT TIME ZONE 'UTC')::date - 120, 'YYYYMMDD')
		                  AND 'statements_' || to_char((now() AT TIME ZONE 'UTC')::date - 101, 'YYYYMMDD')`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(parts) != governanceDays {
		return nil, fmt.Errorf("baseline: %d partitions to drop, want %d", len(parts), governanceDays)
	}
	cpu = e.cpuTimes()
	start = time.Now()
	tx, err := e.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck
	if _, err := tx.Exec(ctx, "DROP TABLE "+strings.Join(parts, ", ")); err != nil {
		return nil, err
	}
	tag, err := tx.Exec(ctx, `DELETE FROM plugin_messaging.posts WHERE tenant_id = $1 AND created_at < now() - interval '90 days'`, e.tenantID)
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, err
	}
	direct := time.Since(start)
	e.printf("  plain SQL: dropped %d partitions, deleted %d posts in %s; %s", len(parts), tag.RowsAffected(), direct.Round(time.Millisecond), e.cpuSince(cpu))
	if tag.RowsAffected() != int64(posts) {
		return nil, fmt.Errorf("baseline: deleted %d posts, want %d", tag.RowsAffected(), posts)
	}

	out := row("governance.retention_execution", viaKernel.Seconds(), "s",
		fmt.Sprintf("the same rows expired by plain SQL as the database superuser in one transaction: DROP TABLE of the %d day partitions and one DELETE of the %d posts", governanceDays, posts),
		direct.Seconds(), ratioAtMost(5))
	out.Note = fmt.Sprintf("DataRetentionJob through the kernel over %d expired telemetry statements (%d day partitions, dropped whole after checking that no other institution's and no held rows are in them) and %d expired messaging posts (deleted 1,000 a transaction by locked primary key with what hangs off them), 90-day policies: the execution's recorded duration (the classes listed, both plugins asked through the kernel, the record signed with the kernel's Ed25519 key, recorded, filed as evidence, audited); one round", statements, governanceDays, posts)
	return []Row{out}, nil
}
