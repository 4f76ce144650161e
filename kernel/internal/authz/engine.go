package authz

import (
	"context"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Subject is who is asking.
type Subject struct {
	Type        string   // "user" or "apikey"
	ID          string   // user or key ID
	Operator    bool     // platform operator
	Permissions []string // API keys only
}

// Input is one question to the policy.
type Input struct {
	Subject  Subject
	Roles    []string
	Tenant   string // "" when the token names no tenant
	Action   string
	Resource *Resource
}

// Resource narrows a decision to one object.
type Resource struct {
	Type   string
	ID     string
	Tenant string
}

// Engine evaluates the policy. Safe for concurrent use.
//
// A decision is a pure function of the input and the policy data, so
// Allowed caches decisions keyed by the whole input and stamped with a data
// generation that every write to the data bumps: a cached answer is never
// served across a change of grants.
type Engine struct {
	store     storage.Store
	allow     rego.PreparedEvalQuery
	granted   rego.PreparedEvalQuery
	gen       atomic.Uint64
	decisions *lru.Cache[string, decision]
}

type decision struct {
	gen   uint64
	allow bool
}

// NewEngine compiles the policy modules in policies (test files excluded)
// and loads the default grants.
func NewEngine(ctx context.Context, policies fs.FS, defaults map[string][]string) (*Engine, error) {
	store := inmem.NewFromObject(map[string]any{
		"edulure": map[string]any{"defaults": grantSets(defaults), "tenants": map[string]any{}},
	})
	opts := []func(*rego.Rego){rego.Store(store)}
	entries, err := fs.ReadDir(policies, ".")
	if err != nil {
		return nil, fmt.Errorf("reading policies: %w", err)
	}
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".rego") || strings.HasSuffix(e.Name(), "_test.rego") {
			continue
		}
		b, err := fs.ReadFile(policies, e.Name())
		if err != nil {
			return nil, err
		}
		opts = append(opts, rego.Module(e.Name(), string(b)))
	}
	e := &Engine{store: store}
	e.decisions, _ = lru.New[string, decision](100_000)
	if e.allow, err = rego.New(append(opts, rego.Query("data.edulure.authz.allow"))...).PrepareForEval(ctx); err != nil {
		return nil, fmt.Errorf("compiling authz policy: %w", err)
	}
	if e.granted, err = rego.New(append(opts, rego.Query("data.edulure.authz.granted"))...).PrepareForEval(ctx); err != nil {
		return nil, fmt.Errorf("compiling authz policy: %w", err)
	}
	return e, nil
}

// Allowed decides one request.
func (e *Engine) Allowed(ctx context.Context, in Input) (bool, error) {
	key := in.cacheKey()
	gen := e.gen.Load()
	if d, ok := e.decisions.Get(key); ok && d.gen == gen {
		return d.allow, nil
	}
	ok, err := e.Evaluate(ctx, in)
	if err != nil {
		return false, err
	}
	e.decisions.Add(key, decision{gen: gen, allow: ok})
	return ok, nil
}

// Evaluate decides one request with OPA, bypassing the decision cache.
func (e *Engine) Evaluate(ctx context.Context, in Input) (bool, error) {
	rs, err := e.allow.Eval(ctx, rego.EvalParsedInput(in.astValue()), rego.EvalMetrics(noMetrics))
	if err != nil {
		return false, fmt.Errorf("evaluating authz policy: %w", err)
	}
	return rs.Allowed(), nil
}

// Granted lists every permission the subject has in the tenant, sorted.
func (e *Engine) Granted(ctx context.Context, in Input) ([]string, error) {
	rs, err := e.granted.Eval(ctx, rego.EvalParsedInput(in.astValue()), rego.EvalMetrics(noMetrics))
	if err != nil {
		return nil, fmt.Errorf("evaluating authz policy: %w", err)
	}
	out := []string{}
	if len(rs) == 1 && len(rs[0].Expressions) == 1 {
		if set, ok := rs[0].Expressions[0].Value.([]any); ok {
			for _, v := range set {
				if s, ok := v.(string); ok {
					out = append(out, s)
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// SetTenantRoles replaces a tenant's role definitions (custom roles and
// overrides of built-in ones). Decisions after it returns see the change.
func (e *Engine) SetTenantRoles(ctx context.Context, tenant string, roles map[string][]string) error {
	defer e.gen.Add(1) // after the write: a decision racing it is cached under the old generation
	return storage.WriteOne(ctx, e.store, storage.AddOp, storage.Path{"edulure", "tenants", tenant},
		map[string]any{"roles": grantSets(roles)})
}

// ReplaceAllTenantRoles replaces every tenant's role definitions at once,
// so a tenant whose definitions were all deleted loses them too.
func (e *Engine) ReplaceAllTenantRoles(ctx context.Context, all map[string]map[string][]string) error {
	defer e.gen.Add(1)
	tenants := make(map[string]any, len(all))
	for t, roles := range all {
		tenants[t] = map[string]any{"roles": grantSets(roles)}
	}
	return storage.WriteOne(ctx, e.store, storage.AddOp, storage.Path{"edulure", "tenants"}, tenants)
}

// SetDefaults replaces the built-in roles' default grants.
func (e *Engine) SetDefaults(ctx context.Context, defaults map[string][]string) error {
	defer e.gen.Add(1)
	return storage.WriteOne(ctx, e.store, storage.AddOp, storage.Path{"edulure", "defaults"}, grantSets(defaults))
}

func grantSets(roles map[string][]string) map[string]any {
	out := make(map[string]any, len(roles))
	for r, perms := range roles {
		set := make(map[string]any, len(perms))
		for _, p := range perms {
			set[p] = true
		}
		out[r] = set
	}
	return out
}

// cacheKey identifies an input exactly: every field, length-prefixed.
func (in Input) cacheKey() string {
	var b strings.Builder
	w := func(s string) { b.WriteString(strconv.Itoa(len(s))); b.WriteByte(':'); b.WriteString(s) }
	w(in.Subject.Type)
	w(in.Subject.ID)
	w(strconv.FormatBool(in.Subject.Operator))
	w(in.Tenant)
	w(in.Action)
	b.WriteString(strconv.Itoa(len(in.Roles)))
	for _, r := range in.Roles {
		w(r)
	}
	b.WriteString(strconv.Itoa(len(in.Subject.Permissions)))
	for _, p := range in.Subject.Permissions {
		w(p)
	}
	if in.Resource != nil {
		w(in.Resource.Type)
		w(in.Resource.ID)
		w(in.Resource.Tenant)
	}
	return b.String()
}

// noMetrics spares each evaluation OPA's default timers, which nothing reads.
var noMetrics = metrics.NoOp()

// The input's keys, made once.
var (
	keySubject, keyRoles, keyTenant = ast.StringTerm("subject"), ast.StringTerm("roles"), ast.StringTerm("tenant")
	keyAction, keyResource, keyType = ast.StringTerm("action"), ast.StringTerm("resource"), ast.StringTerm("type")
	keyID, keyOperator, keyPerms    = ast.StringTerm("id"), ast.StringTerm("operator"), ast.StringTerm("permissions")
	termTrue                        = ast.BooleanTerm(true)
)

// astValue builds the policy input directly as an OPA value, which skips
// the reflection-based conversion of a Go map on every decision.
func (in Input) astValue() ast.Value {
	roles := make([]*ast.Term, len(in.Roles))
	for i, r := range in.Roles {
		roles[i] = ast.StringTerm(r)
	}
	subject := [][2]*ast.Term{
		{keyType, ast.StringTerm(in.Subject.Type)},
		{keyID, ast.StringTerm(in.Subject.ID)},
		{keyOperator, ast.BooleanTerm(in.Subject.Operator)},
	}
	if in.Subject.Type == "apikey" {
		perms := make([][2]*ast.Term, len(in.Subject.Permissions))
		for i, p := range in.Subject.Permissions {
			perms[i] = [2]*ast.Term{ast.StringTerm(p), termTrue}
		}
		subject = append(subject, [2]*ast.Term{keyPerms, ast.ObjectTerm(perms...)})
	}
	items := make([][2]*ast.Term, 0, 5)
	items = append(items,
		[2]*ast.Term{keySubject, ast.ObjectTerm(subject...)},
		[2]*ast.Term{keyRoles, ast.ArrayTerm(roles...)},
		[2]*ast.Term{keyTenant, ast.StringTerm(in.Tenant)},
		[2]*ast.Term{keyAction, ast.StringTerm(in.Action)},
	)
	if in.Resource != nil {
		items = append(items, [2]*ast.Term{keyResource, ast.ObjectTerm(
			[2]*ast.Term{keyType, ast.StringTerm(in.Resource.Type)},
			[2]*ast.Term{keyID, ast.StringTerm(in.Resource.ID)},
			[2]*ast.Term{keyTenant, ast.StringTerm(in.Resource.Tenant)},
		)})
	}
	return ast.NewObject(items...)
}
