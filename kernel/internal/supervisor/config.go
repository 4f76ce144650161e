package supervisor

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	ctyjson "github.com/zclconf/go-cty/cty/json"

	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/wire"
)

// Config is the parsed plugins.hcl.
type Config struct {
	Path    string         // the file it was read from ("" when parsed from bytes with a name only)
	Plugins []PluginConfig // in file order
}

// PluginConfig is one plugin block.
type PluginConfig struct {
	Name             string
	Path             string // absolute, resolved against the config file's directory
	Version          string
	SHA256           string          // lowercase hex
	Checksum         []byte          // decoded SHA256 (32 bytes)
	EnabledByDefault bool            // false unless set
	Config           json.RawMessage // operator config as a JSON object; "{}" when absent
	Limits           Limits
	// Capabilities are the privileged capabilities (wire.PrivilegedCapabilities:
	// retention, grants, sign) the operator allows the plugin: a manifest
	// declaring one not listed here is refused at load.
	Capabilities []string

	// ConfigAt is where the config attribute is written, and ConfigKeys
	// where each of its top-level settings is: for messages that point at
	// the line to change.
	ConfigAt   *hcl.Range
	ConfigKeys map[string]hcl.Range
	// ConfigExternal holds the top-level settings whose value is an env()
	// or file() call: the only way a secret setting may be given.
	ConfigExternal map[string]bool
}

// where is the file:line,column of a setting ("config.label") in
// plugins.hcl, followed by ": ", or "" when not known.
func (pc PluginConfig) where(field string) string {
	key, _, _ := strings.Cut(strings.TrimPrefix(field, "config."), ".")
	if r, ok := pc.ConfigKeys[key]; ok {
		return fmt.Sprintf("%s:%d,%d: ", r.Filename, r.Start.Line, r.Start.Column)
	}
	if r := pc.ConfigAt; r != nil {
		return fmt.Sprintf("%s:%d,%d: ", r.Filename, r.Start.Line, r.Start.Column)
	}
	return ""
}

// Limits bounds what one plugin may use. Absent values take the defaults.
type Limits struct {
	MaxConcurrentRequests int           // in-flight requests; default 64, 1..10000
	RequestTimeout        time.Duration // per request; default 10s, (0, 5m]
	DBConnections         int           // pool size for the plugin's schema; default 4, 1..100

	// Streamed answers (routes with Stream) are not requests in the sense
	// above: they count against neither MaxConcurrentRequests nor
	// RequestTimeout, but against these.
	MaxStreams               int           // open streams of the plugin; default 1000, 1..100000
	MaxStreamsPerInstitution int           // open streams of one institution; default 100, 1..100000
	StreamIdleTimeout        time.Duration // longest wait for the plugin's next part; default 60s, [100ms, 1h]
	StreamMaxDuration        time.Duration // longest a stream lasts; default 1h, [1s, 24h]
	// StorageBytes bounds all the plugin's stored objects together, and
	// StorageObjectBytes one object (default 10 GiB and 1 GiB, at most
	// 1 PiB): a number of bytes or a size such as "500MiB" or "2GB".
	StorageBytes       int64
	StorageObjectBytes int64
}

const (
	defaultMaxConcurrentRequests = 64
	maxMaxConcurrentRequests     = 10000
	defaultRequestTimeout        = 10 * time.Second
	maxRequestTimeout            = 5 * time.Minute
	defaultDBConnections         = 4
	maxDBConnections             = 100

	defaultMaxStreams               = 1000
	defaultMaxStreamsPerInstitution = 100
	maxMaxStreams                   = 100000
	defaultStreamIdleTimeout        = 60 * time.Second
	minStreamIdleTimeout            = 100 * time.Millisecond
	maxStreamIdleTimeout            = time.Hour
	defaultStreamMaxDuration        = time.Hour
	minStreamMaxDuration            = time.Second
	maxStreamMaxDuration            = 24 * time.Hour
	maxStorageBytes                 = 1 << 50
)

// DefaultLimits are the limits of a plugin whose block sets none.
var DefaultLimits = Limits{
	MaxConcurrentRequests: defaultMaxConcurrentRequests,
	RequestTimeout:        defaultRequestTimeout,
	DBConnections:         defaultDBConnections,

	MaxStreams:               defaultMaxStreams,
	MaxStreamsPerInstitution: defaultMaxStreamsPerInstitution,
	StreamIdleTimeout:        defaultStreamIdleTimeout,
	StreamMaxDuration:        defaultStreamMaxDuration,

	StorageBytes:       blobstore.DefaultLimits.Bytes,
	StorageObjectBytes: blobstore.DefaultLimits.ObjectBytes,
}

var (
	// pluginNameRE: the name becomes the Postgres schema plugin_<name> and a
	// permission prefix, so it is kept to lowercase identifier characters.
	pluginNameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{1,30}$`)
	// semverRE is the regular expression from semver.org (2.0.0), without a "v".
	semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
		`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
		`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)
	sha256RE = regexp.MustCompile(`^[0-9a-fA-F]{64}$`)
)

var (
	fileSchema = &hcl.BodySchema{
		Blocks: []hcl.BlockHeaderSchema{{Type: "plugin", LabelNames: []string{"name"}}},
	}
	// Required attributes are checked by hand, for a message that says what
	// the value should be.
	pluginSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "path"},
			{Name: "version"},
			{Name: "sha256"},
			{Name: "enabled_by_default"},
			{Name: "config"},
			{Name: "capabilities"},
		},
		Blocks: []hcl.BlockHeaderSchema{{Type: "limits"}},
	}
	limitsSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{
			{Name: "max_concurrent_requests"},
			{Name: "request_timeout"},
			{Name: "db_connections"},
			{Name: "max_streams"},
			{Name: "max_streams_per_institution"},
			{Name: "stream_idle_timeout"},
			{Name: "stream_max_duration"},
			{Name: "storage_bytes"},
			{Name: "storage_object_bytes"},
		},
	}
)

// requiredAttrs are the plugin attributes without a default, and what each
// should hold.
var requiredAttrs = []struct{ name, want string }{
	{"path", `the plugin binary's path, absolute or relative to this file's directory, e.g. "bin/plugins/<name>"`},
	{"version", `the plugin's semantic version MAJOR.MINOR.PATCH, e.g. "0.1.0"`},
	{"sha256", "the SHA-256 checksum of the plugin binary as 64 hex characters (the output of `sha256sum`)"},
}

// LoadConfig reads and validates plugins.hcl. A missing file is an error wrapping fs.ErrNotExist.
func LoadConfig(path string) (*Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading plugin config: %w", err)
	}
	cfg, err := ParseConfig(src, path)
	if err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving plugin config path %q: %w", path, err)
	}
	cfg.Path = abs
	return cfg, nil
}

// ParseConfig parses src as if read from filename (relative plugin paths resolve against filepath.Dir(filename)).
//
// The error, if any, lists every problem found, one per line, each starting
// with filename:line,column as HCL diagnostics do; it unwraps to hcl.Diagnostics.
func ParseConfig(src []byte, filename string) (*Config, error) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, newDiagnosticsError(diags)
	}
	content, diags := file.Body.Content(fileSchema)

	p := configParser{dir: filepath.Dir(filename), seen: map[string]hcl.Range{}}
	cfg := &Config{Plugins: make([]PluginConfig, 0, len(content.Blocks))}
	for _, block := range content.Blocks {
		pc, pdiags := p.plugin(block)
		diags = append(diags, pdiags...)
		cfg.Plugins = append(cfg.Plugins, pc)
	}
	if diags.HasErrors() {
		return nil, newDiagnosticsError(diags)
	}
	return cfg, nil
}

// Plugin returns the named plugin's config.
func (c *Config) Plugin(name string) (PluginConfig, bool) {
	if c == nil {
		return PluginConfig{}, false
	}
	for _, p := range c.Plugins {
		if p.Name == name {
			return p, true
		}
	}
	return PluginConfig{}, false
}

// configParser holds what one ParseConfig call needs across plugin blocks.
type configParser struct {
	dir  string               // directory relative plugin paths resolve against
	seen map[string]hcl.Range // plugin name -> its label's range, for duplicates
}

func (p *configParser) plugin(block *hcl.Block) (PluginConfig, hcl.Diagnostics) {
	name := block.Labels[0]
	nameRange := block.LabelRanges[0]
	pc := PluginConfig{
		Name:   name,
		Config: json.RawMessage("{}"),
		Limits: DefaultLimits,
	}

	var diags hcl.Diagnostics
	if !pluginNameRE.MatchString(name) {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Invalid plugin name",
			Detail: fmt.Sprintf("Plugin name %q is not allowed: expected 2 to 31 characters, "+
				"starting with a lowercase letter, then lowercase letters, digits or underscores "+
				"(it becomes the database schema plugin_<name>), e.g. %q.", name, "gamification"),
			Subject: nameRange.Ptr(),
			Context: block.DefRange.Ptr(),
		})
	}
	if first, dup := p.seen[name]; dup {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Duplicate plugin",
			Detail: fmt.Sprintf("Plugin %q is already declared at %s; each plugin name must be unique.",
				name, first),
			Subject: nameRange.Ptr(),
			Context: block.DefRange.Ptr(),
		})
	} else {
		p.seen[name] = nameRange
	}

	content, cdiags := block.Body.Content(pluginSchema)
	diags = append(diags, cdiags...)

	for _, req := range requiredAttrs {
		if _, ok := content.Attributes[req.name]; !ok {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Missing required argument",
				Detail:   fmt.Sprintf("Plugin %q has no %q; expected %s.", name, req.name, req.want),
				Subject:  block.DefRange.Ptr(),
			})
		}
	}

	if attr, ok := content.Attributes["path"]; ok {
		pc.Path, cdiags = p.path(attr)
		diags = append(diags, cdiags...)
	}
	if attr, ok := content.Attributes["version"]; ok {
		pc.Version, cdiags = version(attr)
		diags = append(diags, cdiags...)
	}
	if attr, ok := content.Attributes["sha256"]; ok {
		pc.SHA256, pc.Checksum, cdiags = checksum(attr)
		diags = append(diags, cdiags...)
	}
	if attr, ok := content.Attributes["enabled_by_default"]; ok {
		if v, vdiags := attrValue(attr, cty.Bool, "true or false"); vdiags.HasErrors() {
			diags = append(diags, vdiags...)
		} else {
			pc.EnabledByDefault = v.True()
		}
	}
	if attr, ok := content.Attributes["capabilities"]; ok {
		pc.Capabilities, cdiags = capabilities(attr)
		diags = append(diags, cdiags...)
	}
	if attr, ok := content.Attributes["config"]; ok {
		var raw json.RawMessage
		raw, cdiags = operatorConfig(attr, p.functions())
		diags = append(diags, cdiags...)
		if raw != nil {
			pc.Config = raw
		}
		pc.ConfigAt = attr.Range.Ptr()
		pc.ConfigKeys, pc.ConfigExternal = configKeys(attr)
	}

	var limitsBlock *hcl.Block
	for _, b := range content.Blocks {
		if limitsBlock != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Duplicate limits block",
				Detail: fmt.Sprintf("Plugin %q already has a limits block at %s; expected at most one.",
					name, limitsBlock.DefRange),
				Subject: b.DefRange.Ptr(),
			})
			continue
		}
		limitsBlock = b
		diags = append(diags, limits(b, &pc.Limits)...)
	}

	return pc, diags
}

// capabilities reads the privileged capabilities the operator allows.
func capabilities(attr *hcl.Attribute) ([]string, hcl.Diagnostics) {
	want := fmt.Sprintf("a list of privileged capabilities, e.g. [%q]; known: %s", wire.CapRetention, strings.Join(wire.PrivilegedCapabilities, ", "))
	v, diags := attrValue(attr, cty.List(cty.String), want)
	if diags.HasErrors() {
		return nil, diags
	}
	var out []string
	for _, e := range v.AsValueSlice() {
		if e.IsNull() {
			return nil, invalid(attr, "Invalid capabilities", "A capability is null; expected "+want+".")
		}
		c := e.AsString()
		switch {
		case !slices.Contains(wire.PrivilegedCapabilities, c):
			return nil, invalid(attr, "Invalid capabilities", fmt.Sprintf("Capability %q is not a privileged capability the operator grants; expected %s.", c, want))
		case slices.Contains(out, c):
			return nil, invalid(attr, "Invalid capabilities", fmt.Sprintf("Capability %q is listed twice.", c))
		}
		out = append(out, c)
	}
	return out, nil
}

// path resolves the plugin binary's path against the config file's directory.
func (p *configParser) path(attr *hcl.Attribute) (string, hcl.Diagnostics) {
	v, diags := attrValue(attr, cty.String, "a string")
	if diags.HasErrors() {
		return "", diags
	}
	s := v.AsString()
	if strings.TrimSpace(s) == "" {
		return "", invalid(attr, "Invalid path",
			"The plugin path is empty; expected the plugin binary's path, absolute or relative to this file's directory.")
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(p.dir, s)
	}
	abs, err := filepath.Abs(s)
	if err != nil {
		return "", invalid(attr, "Invalid path", fmt.Sprintf("Cannot make %q absolute: %s.", s, err))
	}
	return abs, nil
}

func version(attr *hcl.Attribute) (string, hcl.Diagnostics) {
	v, diags := attrValue(attr, cty.String, "a string")
	if diags.HasErrors() {
		return "", diags
	}
	s := v.AsString()
	if semverRE.MatchString(s) {
		return s, nil
	}
	detail := fmt.Sprintf("%q is not a semantic version; expected MAJOR.MINOR.PATCH with optional -prerelease and +build, e.g. \"0.1.0\".", s)
	if rest, ok := strings.CutPrefix(s, "v"); ok && semverRE.MatchString(rest) {
		detail = fmt.Sprintf("%q has a leading \"v\"; expected the bare semantic version %q.", s, rest)
	}
	return "", invalid(attr, "Invalid version", detail)
}

func checksum(attr *hcl.Attribute) (string, []byte, hcl.Diagnostics) {
	v, diags := attrValue(attr, cty.String, "a string")
	if diags.HasErrors() {
		return "", nil, diags
	}
	s := v.AsString()
	if !sha256RE.MatchString(s) {
		return "", nil, invalid(attr, "Invalid sha256", fmt.Sprintf(
			"%q is not a SHA-256 checksum: expected exactly 64 hex characters (0-9, a-f), got %d characters.",
			s, len(s)))
	}
	s = strings.ToLower(s)
	sum, err := hex.DecodeString(s)
	if err != nil { // unreachable after the regexp, kept so a bad edit cannot pass silently
		return "", nil, invalid(attr, "Invalid sha256", fmt.Sprintf("Cannot decode %q: %s.", s, err))
	}
	return s, sum, nil
}

// operatorConfig converts the config attribute, evaluated with ctx (the
// env and file functions), to a JSON object. It returns nil, without
// diagnostics, for config = null.
func operatorConfig(attr *hcl.Attribute, ctx *hcl.EvalContext) (json.RawMessage, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(ctx)
	if diags.HasErrors() {
		return nil, diags
	}
	if v.IsNull() {
		return nil, nil
	}
	if ty := v.Type(); !ty.IsObjectType() && !ty.IsMapType() {
		return nil, invalid(attr, "Invalid config", fmt.Sprintf(
			"The plugin's config must be an object such as { points_per_lesson = 10 }; got %s.",
			ty.FriendlyName()))
	}
	if !v.IsWhollyKnown() {
		return nil, invalid(attr, "Invalid config", "The plugin's config must be a literal value.")
	}
	raw, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		return nil, invalid(attr, "Invalid config", fmt.Sprintf("Cannot convert config to JSON: %s.", err))
	}
	return raw, nil
}

// configKeys is where each top-level setting of a config object is
// written, and which of them are given by an env() or file() call.
func configKeys(attr *hcl.Attribute) (map[string]hcl.Range, map[string]bool) {
	obj, ok := attr.Expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		return nil, nil
	}
	at, external := map[string]hcl.Range{}, map[string]bool{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if diags.HasErrors() || k.Type() != cty.String || k.IsNull() || !k.IsKnown() {
			continue
		}
		at[k.AsString()] = item.KeyExpr.Range()
		expr := item.ValueExpr
		for {
			p, ok := expr.(*hclsyntax.ParenthesesExpr)
			if !ok {
				break
			}
			expr = p.Expression
		}
		if call, ok := expr.(*hclsyntax.FunctionCallExpr); ok && (call.Name == "env" || call.Name == "file") {
			external[k.AsString()] = true
		}
	}
	if len(external) == 0 {
		external = nil
	}
	return at, external
}

// limits decodes a limits block into l, which holds the defaults on entry.
func limits(block *hcl.Block, l *Limits) hcl.Diagnostics {
	content, diags := block.Body.Content(limitsSchema)
	if attr, ok := content.Attributes["max_concurrent_requests"]; ok {
		n, ndiags := intInRange(attr, 1, maxMaxConcurrentRequests)
		diags = append(diags, ndiags...)
		if !ndiags.HasErrors() {
			l.MaxConcurrentRequests = n
		}
	}
	if attr, ok := content.Attributes["db_connections"]; ok {
		n, ndiags := intInRange(attr, 1, maxDBConnections)
		diags = append(diags, ndiags...)
		if !ndiags.HasErrors() {
			l.DBConnections = n
		}
	}
	if attr, ok := content.Attributes["request_timeout"]; ok {
		d, ddiags := timeout(attr)
		diags = append(diags, ddiags...)
		if !ddiags.HasErrors() {
			l.RequestTimeout = d
		}
	}
	for _, n := range []struct {
		name string
		to   *int
	}{{"max_streams", &l.MaxStreams}, {"max_streams_per_institution", &l.MaxStreamsPerInstitution}} {
		if attr, ok := content.Attributes[n.name]; ok {
			v, ndiags := intInRange(attr, 1, maxMaxStreams)
			diags = append(diags, ndiags...)
			if !ndiags.HasErrors() {
				*n.to = v
			}
		}
	}
	for _, d := range []struct {
		name     string
		lo, hi   time.Duration
		to       *time.Duration
		examples string
	}{
		{"stream_idle_timeout", minStreamIdleTimeout, maxStreamIdleTimeout, &l.StreamIdleTimeout, `"60s" or "2m"`},
		{"stream_max_duration", minStreamMaxDuration, maxStreamMaxDuration, &l.StreamMaxDuration, `"1h" or "30m"`},
	} {
		if attr, ok := content.Attributes[d.name]; ok {
			v, ddiags := duration(attr, d.lo, d.hi, d.examples)
			diags = append(diags, ddiags...)
			if !ddiags.HasErrors() {
				*d.to = v
			}
		}
	}
	if l.MaxStreamsPerInstitution > l.MaxStreams {
		if attr, ok := content.Attributes["max_streams_per_institution"]; ok {
			diags = append(diags, invalid(attr, "Invalid max_streams_per_institution", fmt.Sprintf(
				"max_streams_per_institution is %d, more than max_streams (%d); expected at most max_streams.", l.MaxStreamsPerInstitution, l.MaxStreams))...)
		} else {
			l.MaxStreamsPerInstitution = l.MaxStreams // a lower plugin cap lowers the default per institution
		}
	}
	for name, dst := range map[string]*int64{"storage_bytes": &l.StorageBytes, "storage_object_bytes": &l.StorageObjectBytes} {
		if attr, ok := content.Attributes[name]; ok {
			n, ndiags := byteSize(attr)
			diags = append(diags, ndiags...)
			if !ndiags.HasErrors() {
				*dst = n
			}
		}
	}
	return diags
}

// duration reads a Go duration string in [lo, hi].
func duration(attr *hcl.Attribute, lo, hi time.Duration, examples string) (time.Duration, hcl.Diagnostics) {
	want := fmt.Sprintf("a Go duration string from %s to %s, e.g. %s", lo, hi, examples)
	v, diags := attrValue(attr, cty.String, want)
	if diags.HasErrors() {
		return 0, diags
	}
	s := v.AsString()
	d, err := time.ParseDuration(s)
	if err != nil || d < lo || d > hi {
		return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s is %q; expected %s.", attr.Name, s, want))
	}
	return d, nil
}

// sizeUnits are the units a byte size may be written in.
var sizeUnits = map[string]int64{
	"": 1, "B": 1,
	"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

var sizeRE = regexp.MustCompile(`^([0-9]+)\s*([A-Za-z]*)$`)

// byteSize reads a number of bytes: a whole number, or a string of one
// with a unit ("500MiB", "2 GB").
func byteSize(attr *hcl.Attribute) (int64, hcl.Diagnostics) {
	want := `a number of bytes from 1 to 1 PiB, or a size such as "500MiB" or "2GB" (units B, KB, MB, GB, TB, KiB, MiB, GiB, TiB)`
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return 0, diags
	}
	var n int64
	switch {
	case v.IsNull() || !v.IsWhollyKnown():
		return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s must be a literal value; expected %s.", attr.Name, want))
	case v.Type() == cty.Number:
		f := v.AsBigFloat()
		i, acc := f.Int64()
		if !f.IsInt() || acc != big.Exact || i < 1 || i > maxStorageBytes {
			return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s is %s; expected %s.", attr.Name, f.Text('f', -1), want))
		}
		n = i
	case v.Type() == cty.String:
		m := sizeRE.FindStringSubmatch(strings.TrimSpace(v.AsString()))
		unit, ok := int64(0), false
		if m != nil {
			unit, ok = sizeUnits[m[2]]
		}
		count, err := strconv.ParseInt(m0(m), 10, 64)
		if !ok || err != nil || count < 1 || count > maxStorageBytes/unit {
			return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s is %q; expected %s.", attr.Name, v.AsString(), want))
		}
		n = count * unit
	default:
		return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s is %s; expected %s.", attr.Name, v.Type().FriendlyName(), want))
	}
	return n, nil
}

// m0 is the number of a size's match, "" without a match.
func m0(m []string) string {
	if m == nil {
		return ""
	}
	return m[1]
}

func intInRange(attr *hcl.Attribute, lo, hi int) (int, hcl.Diagnostics) {
	want := fmt.Sprintf("a whole number from %d to %d", lo, hi)
	v, diags := attrValue(attr, cty.Number, want)
	if diags.HasErrors() {
		return 0, diags
	}
	f := v.AsBigFloat()
	if !f.IsInt() || f.Cmp(big.NewFloat(float64(lo))) < 0 || f.Cmp(big.NewFloat(float64(hi))) > 0 {
		return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf(
			"%s is %s; expected %s.", attr.Name, f.Text('f', -1), want))
	}
	n, _ := f.Int64()
	return int(n), nil
}

func timeout(attr *hcl.Attribute) (time.Duration, hcl.Diagnostics) {
	want := fmt.Sprintf(`a Go duration string greater than 0 and at most %s, e.g. "10s" or "1m30s"`, maxRequestTimeout)
	v, diags := attrValue(attr, cty.String, want)
	if diags.HasErrors() {
		return 0, diags
	}
	s := v.AsString()
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > maxRequestTimeout {
		return 0, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s is %q; expected %s.", attr.Name, s, want))
	}
	return d, nil
}

// attrValue evaluates attr as a literal (no variables or functions) and
// converts it to ty; want says what is expected, for the error message.
func attrValue(attr *hcl.Attribute, ty cty.Type, want string) (cty.Value, hcl.Diagnostics) {
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	if v.IsNull() {
		return cty.NilVal, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s is null; expected %s.", attr.Name, want))
	}
	if !v.IsWhollyKnown() {
		return cty.NilVal, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf("%s must be a literal value; expected %s.", attr.Name, want))
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, invalid(attr, "Invalid "+attr.Name, fmt.Sprintf(
			"%s is %s; expected %s.", attr.Name, v.Type().FriendlyName(), want))
	}
	return cv, nil
}

// invalid reports a bad value, pointing at the value's source range.
func invalid(attr *hcl.Attribute, summary, detail string) hcl.Diagnostics {
	return hcl.Diagnostics{{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   detail,
		Subject:  attr.Expr.Range().Ptr(),
		Context:  attr.Range.Ptr(),
	}}
}

// diagnosticsError reports every problem in a config file, in file order,
// one per line. It unwraps to hcl.Diagnostics for callers that want to render
// them with source snippets.
type diagnosticsError struct {
	diags hcl.Diagnostics
}

func newDiagnosticsError(diags hcl.Diagnostics) error {
	errs := make(hcl.Diagnostics, 0, len(diags))
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			errs = append(errs, d)
		}
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Subject, errs[j].Subject
		if a == nil || b == nil {
			return a != nil
		}
		return a.Start.Byte < b.Start.Byte
	})
	return &diagnosticsError{diags: errs}
}

func (e *diagnosticsError) Error() string {
	lines := make([]string, len(e.diags))
	for i, d := range e.diags {
		lines[i] = d.Error()
	}
	return strings.Join(lines, "\n")
}

func (e *diagnosticsError) Unwrap() error { return e.diags }
