package plugintest_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/sdk"
	"github.com/edulure/edulure/sdk/plugintest"
)

var cascaded atomic.Int64

// forum has one retention class on the generic SQL (posts: delete or
// anonymise, person and course holds) and one with its own Apply.
type forum struct{ caps []sdk.Capability }

var forumMigrations = fstest.MapFS{"0001_forum.up.sql": {Data: []byte(`
	CREATE TABLE posts (
		tenant_id  uuid NOT NULL,
		id         bigserial PRIMARY KEY,
		author_id  uuid,
		course_id  uuid NOT NULL,
		body       text NOT NULL,
		created_at timestamptz NOT NULL
	);
	CREATE TABLE pings (
		tenant_id uuid NOT NULL,
		id        bigserial PRIMARY KEY,
		at        timestamptz NOT NULL
	);
`)}}

func (f forum) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "forum", Version: "0.1.0", Migrations: forumMigrations, Capabilities: f.caps,
		PersonalData: []sdk.DataClass{{
			Name: "posts", Table: "posts", Subject: "author_id", OnErase: sdk.Delete,
			Columns: []sdk.PersonalColumn{{Name: "body", Kind: sdk.FreeText}},
		}},
		Retention: []sdk.RetentionClass{{
			Name: "posts", Description: "Forum posts.", Table: "posts", TimeColumn: "created_at", Subject: "author_id",
			HoldColumns: map[string]string{"course": "course_id"},
			ID:          "id",
			Cascade: func(ctx context.Context, run *sdk.RetentionRun, tx pgx.Tx, ids []string) error {
				cascaded.Add(int64(len(ids)))
				return nil
			},
			Anonymise: []sdk.PersonalColumn{{Name: "body", Kind: sdk.FreeText}},
			Actions:   []sdk.RetentionAction{sdk.RetainDelete, sdk.RetainAnonymise},
		}, {
			Name: "pings", Description: "Pings, removed by the plugin's own code.", Table: "pings", TimeColumn: "at",
			Actions: []sdk.RetentionAction{sdk.RetainDelete},
			Apply: func(ctx context.Context, run *sdk.RetentionRun) (sdk.RetentionResult, error) {
				res, err := run.Default(ctx)
				res.SampleIDs = nil
				return res, err
			},
		}},
	}
}

func seedPosts(t *testing.T, h *plugintest.Harness, tenant, author, course string, at time.Time, n int) {
	t.Helper()
	require.NoError(t, h.InTenant(tenant, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO posts (tenant_id, author_id, course_id, body, created_at)
			SELECT $1, $2, $3, 'post ' || g, $4 FROM generate_series(1, $5) g`, tenant, author, course, at, n)
		return err
	}))
}

func countPosts(t *testing.T, h *plugintest.Harness, tenant string) (all, withBody int64) {
	t.Helper()
	require.NoError(t, h.DB().QueryRow(context.Background(),
		`SELECT count(*), count(*) FILTER (WHERE body <> '[erased]') FROM plugin_forum.posts WHERE tenant_id = $1`, tenant).Scan(&all, &withBody))
	return all, withBody
}

func TestRetentionGenericSQL(t *testing.T) {
	h := plugintest.New(t, forum{})
	a, b := plugintest.NewTenant(), plugintest.NewTenant()
	alice, bob := plugintest.NewID(), plugintest.NewID()
	course, heldCourse := plugintest.NewID(), plugintest.NewID()
	now := time.Now().UTC()
	old, recent := now.AddDate(-2, 0, 0), now.AddDate(0, -1, 0)
	cutoff := now.AddDate(-1, 0, 0)
	seedPosts(t, h, a, alice, course, old, 1500) // more than one batch
	seedPosts(t, h, a, bob, course, old, 7)      // bob is held
	seedPosts(t, h, a, alice, heldCourse, old, 5)
	seedPosts(t, h, a, alice, course, recent, 9)
	seedPosts(t, h, b, alice, course, old, 11) // another institution
	holds := []sdk.RetentionHold{{Kind: sdk.HoldPerson, ID: bob}, {Kind: "course", ID: heldCourse}}
	req := sdk.RetentionRequest{TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, DryRun: true, Holds: holds, SampleLimit: 5}

	dry, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, int64(1500), dry.Matched)
	require.Zero(t, dry.Affected)
	require.Len(t, dry.SampleIDs, 5)
	all, _ := countPosts(t, h, a)
	require.Equal(t, int64(1521), all, "a dry run changes nothing")

	req.DryRun = false
	cascaded.Store(0)
	run, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Equal(t, run.Affected, cascaded.Load(), "Cascade saw every deleted row")
	require.Len(t, run.SampleIDs, 5)
	require.Equal(t, dry.Matched, run.Matched, "the execution selects what the dry run counted")
	require.Equal(t, dry.Matched, run.Affected)
	all, _ = countPosts(t, h, a)
	require.Equal(t, int64(21), all, "held and recent posts stay")
	all, _ = countPosts(t, h, b)
	require.Equal(t, int64(11), all, "another institution's rows are untouched")

	again, err := h.ApplyRetention(req)
	require.NoError(t, err)
	require.Zero(t, again.Affected, "nothing left to do")

	// A tenant hold suspends everything.
	req.Holds = []sdk.RetentionHold{{Kind: sdk.HoldTenant}}
	held, err := h.ApplyRetention(sdk.RetentionRequest{TenantID: b, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, Holds: req.Holds})
	require.NoError(t, err)
	require.Zero(t, held.Matched)
	all, _ = countPosts(t, h, b)
	require.Equal(t, int64(11), all)

	// Anonymise: dry run and execution agree, and a second run finds nothing.
	anon := sdk.RetentionRequest{TenantID: b, Class: "posts", Cutoff: cutoff, Action: sdk.RetainAnonymise, DryRun: true}
	dry, err = h.ApplyRetention(anon)
	require.NoError(t, err)
	require.Equal(t, int64(11), dry.Matched)
	anon.DryRun = false
	run, err = h.ApplyRetention(anon)
	require.NoError(t, err)
	require.Equal(t, dry.Matched, run.Affected)
	all, withBody := countPosts(t, h, b)
	require.Equal(t, int64(11), all)
	require.Zero(t, withBody)
	var authored int64
	require.NoError(t, h.DB().QueryRow(context.Background(), `SELECT count(*) FROM plugin_forum.posts WHERE author_id = $1 AND tenant_id = $2`, alice, b).Scan(&authored))
	require.Zero(t, authored, "the author became a pseudonym")
	run, err = h.ApplyRetention(anon)
	require.NoError(t, err)
	require.Zero(t, run.Affected)

	// The class's own Apply.
	require.NoError(t, h.InTenant(a, func(tx pgx.Tx) error {
		_, err := tx.Exec(context.Background(), `INSERT INTO pings (tenant_id, at) VALUES ($1, $2), ($1, $3)`, a, old, recent)
		return err
	}))
	res, err := h.ApplyRetention(sdk.RetentionRequest{TenantID: a, Class: "pings", Cutoff: cutoff, Action: sdk.RetainDelete, SampleLimit: 3})
	require.NoError(t, err)
	require.Equal(t, int64(1), res.Affected)
	require.Empty(t, res.SampleIDs)
}

func TestRetentionRefusals(t *testing.T) {
	h := plugintest.New(t, forum{})
	a := plugintest.NewTenant()
	cutoff := time.Now()
	for name, req := range map[string]sdk.RetentionRequest{
		"unknown class":     {TenantID: a, Class: "nope", Cutoff: cutoff, Action: sdk.RetainDelete},
		"unsupported":       {TenantID: a, Class: "pings", Cutoff: cutoff, Action: sdk.RetainAnonymise},
		"no cutoff":         {TenantID: a, Class: "posts", Action: sdk.RetainDelete},
		"future cutoff":     {TenantID: a, Class: "posts", Cutoff: cutoff.Add(time.Hour), Action: sdk.RetainDelete},
		"unknown hold":      {TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, Holds: []sdk.RetentionHold{{Kind: "planet", ID: "x"}}},
		"person hold no id": {TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, Holds: []sdk.RetentionHold{{Kind: sdk.HoldPerson}}},
		"bad tenant":        {TenantID: "x", Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete},
		"too many samples":  {TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, SampleLimit: 1000},
	} {
		_, err := h.ApplyRetention(req)
		require.Error(t, err, name)
		require.True(t, errors.Is(err, sdk.ErrInvalid), "%s: %v", name, err)
	}
	// A hold ID that is no UUID for a uuid column holds nothing and breaks nothing.
	_, err := h.ApplyRetention(sdk.RetentionRequest{TenantID: a, Class: "posts", Cutoff: cutoff, Action: sdk.RetainDelete, DryRun: true,
		Holds: []sdk.RetentionHold{{Kind: "course", ID: "'; DROP TABLE posts; --"}}})
	require.NoError(t, err)
}

func TestRetentionManifestRules(t *testing.T) {
	bad := forum{}.Manifest()
	bad.Retention = append(bad.Retention, sdk.RetentionClass{Name: "posts", Table: "posts", TimeColumn: "created_at", Actions: []sdk.RetentionAction{"shred", sdk.RetainArchive}})
	err := plugintest.Check(manifestOnly{bad})
	require.Error(t, err)
	for _, want := range []string{`retention class "posts" is declared twice`, `action "shred"`, "action archive: declare the capability"} {
		require.Contains(t, err.Error(), want)
	}
}

type manifestOnly struct{ m sdk.Manifest }

func (p manifestOnly) Manifest() sdk.Manifest { return p.m }

func TestGovernanceHost(t *testing.T) {
	ctx := context.Background()
	plain := plugintest.New(t, forum{})
	_, err := plain.Env().Host.Sign(ctx, "forum.x", []byte("x"))
	require.ErrorIs(t, err, sdk.ErrForbidden, "no capability, no signature")
	_, err = plain.Env().Host.RetentionClasses(ctx, plugintest.NewTenant())
	require.ErrorIs(t, err, sdk.ErrForbidden)

	h := plugintest.New(t, forum{caps: []sdk.Capability{sdk.CapRetention, sdk.CapGrants, sdk.CapSign}})
	peer := plugintest.New(t, forum2{}, plugintest.WithDatabaseOf(h))
	h.AddRetentionPeer(peer)
	a := plugintest.NewTenant()
	classes, err := h.Env().Host.RetentionClasses(ctx, a)
	require.NoError(t, err)
	require.Len(t, classes, 3)
	peer.SetEnabled(a, false)
	classes, err = h.Env().Host.RetentionClasses(ctx, a)
	require.NoError(t, err)
	require.Len(t, classes, 2)
	_, err = h.Env().Host.ApplyRetention(ctx, "forum2", sdk.RetentionRequest{TenantID: a, Class: "notes", Cutoff: time.Now(), Action: sdk.RetainDelete})
	require.ErrorIs(t, err, sdk.ErrNotFound, "not enabled for the institution")

	payload := []byte(`{"execution":1}`)
	sig, err := h.Env().Host.Sign(ctx, "forum.retention.execution", payload)
	require.NoError(t, err)
	claims, err := sdk.VerifySignature(h.JWKS(), sig, payload)
	require.NoError(t, err)
	require.Equal(t, "forum.retention.execution", claims.Purpose)
	_, err = sdk.VerifySignature(h.JWKS(), sig, []byte(`{"execution":2}`))
	require.ErrorIs(t, err, sdk.ErrSignature, "another payload")
	tampered := sig
	tampered.JWS = sig.JWS[:len(sig.JWS)-4] + "AAAA"
	_, err = sdk.VerifySignature(h.JWKS(), tampered, payload)
	require.ErrorIs(t, err, sdk.ErrSignature)
	_, err = sdk.VerifySignature(plain.JWKS(), sig, payload)
	require.ErrorIs(t, err, sdk.ErrSignature, "another key set")
	_, err = h.Env().Host.Sign(ctx, "courses.x", payload)
	require.ErrorIs(t, err, sdk.ErrInvalid, "a purpose of another plugin")

	admin := plugintest.User(a, "admin")
	learner := plugintest.User(a, "learner", "instructor")
	h.AddGrant(a, sdk.Grant{Kind: sdk.GrantAPIKey, ID: plugintest.NewID(), Permissions: []string{"forum.x"}, Orphan: true, OrphanReason: "creator_removed"})
	grants, err := h.Env().Host.Grants(ctx, a)
	require.NoError(t, err)
	require.Len(t, grants, 2+3+1, fmt.Sprint(grants))
	require.ErrorIs(t, h.Env().Host.RevokeGrant(ctx, learner, a, sdk.GrantRef{Kind: sdk.GrantMembership, ID: admin.UserID}, "x"), sdk.ErrForbidden)
	require.NoError(t, h.Env().Host.RevokeGrant(ctx, admin, a, sdk.GrantRef{Kind: sdk.GrantRole, ID: learner.UserID + "/instructor"}, "review"))
	require.Len(t, h.Revocations(), 1)
}

// forum2 is a second plugin with a retention class, a peer of forum.
type forum2 struct{}

func (forum2) Manifest() sdk.Manifest {
	return sdk.Manifest{
		Name: "forum2", Version: "0.1.0",
		Migrations: fstest.MapFS{"0001_notes.up.sql": {Data: []byte(`CREATE TABLE notes (tenant_id uuid NOT NULL, id bigserial PRIMARY KEY, at timestamptz NOT NULL);`)}},
		Retention:  []sdk.RetentionClass{{Name: "notes", Table: "notes", TimeColumn: "at", Actions: []sdk.RetentionAction{sdk.RetainDelete}}},
	}
}
