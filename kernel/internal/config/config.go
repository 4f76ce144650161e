package config

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/edulure/edulure/kernel/internal/objectstore"
	"github.com/edulure/edulure/sdk/telemetry"
)

var rolePrefix = regexp.MustCompile(`^[a-z][a-z0-9_]{0,19}$`)

// Config is everything the kernel reads from its environment.
type Config struct {
	DatabaseURL     string        // DATABASE_URL (required)
	Addr            string        // EDULURE_ADDR, default ":8080"
	SecretKey       []byte        // EDULURE_SECRET_KEY: 32 bytes, hex or base64 (required)
	Issuer          string        // EDULURE_ISSUER, default "edulure"
	AccessTokenTTL  time.Duration // EDULURE_ACCESS_TOKEN_TTL, default 15m
	RefreshTokenTTL time.Duration // EDULURE_REFRESH_TOKEN_TTL, default 720h
	LogFormat       string        // EDULURE_LOG_FORMAT: auto|json|text, default auto
	LogLevel        string        // EDULURE_LOG_LEVEL: trace|debug|info|warn|error, default info
	CORSOrigins     []string      // EDULURE_CORS_ORIGINS: comma-separated origins, default none
	BodyLimit       int64         // EDULURE_BODY_LIMIT_BYTES, default 1 MiB
	RequestTimeout  time.Duration // EDULURE_REQUEST_TIMEOUT, default 30s
	MigrateOnStart  bool          // EDULURE_MIGRATE_ON_START, default true
	DBMaxConns      int32         // EDULURE_DB_MAX_CONNS, default 20
	AuthRatePerIP   int           // EDULURE_AUTH_RATE_PER_IP: auth requests per minute per client IP, default 60
	AuthRatePerUser int           // EDULURE_AUTH_RATE_PER_ACCOUNT: login attempts per minute per account, default 10
	TrustProxy      bool          // EDULURE_TRUST_PROXY: take the client IP from X-Forwarded-For and the scheme from X-Forwarded-Proto, default false
	PluginsFile     string        // EDULURE_PLUGINS_FILE: the plugins to run, default "plugins.hcl"; "none" runs none
	DBRolePrefix    string        // EDULURE_DB_ROLE_PREFIX: prefix of plugin database roles, default none

	EventsMaxAttempts int           // EDULURE_EVENTS_MAX_ATTEMPTS: delivery attempts before a dead letter, default 10
	EventsBackoff     time.Duration // EDULURE_EVENTS_BACKOFF: delay after a failed delivery, doubling, default 1s
	EventsBackoffMax  time.Duration // EDULURE_EVENTS_BACKOFF_MAX, default 10m
	EventsPoll        time.Duration // EDULURE_EVENTS_POLL: fallback poll of the outboxes, default 1s
	EventsRetention   time.Duration // EDULURE_EVENTS_RETENTION: how long the event log keeps events (the catch-up window), default 720h (30 days)
	EventsPruneEvery  time.Duration // EDULURE_EVENTS_PRUNE_EVERY: how often the event log is pruned, default 10m
	JobsMaxAttempts   int           // EDULURE_JOBS_MAX_ATTEMPTS: attempts of a job run that sets none, default 5
	JobsTimeout       time.Duration // EDULURE_JOBS_TIMEOUT: one attempt of a job that sets none, default 1m
	JobsBackoff       time.Duration // EDULURE_JOBS_BACKOFF: delay before a job's second attempt, doubling, default 5s
	JobsPoll          time.Duration // EDULURE_JOBS_POLL: River's poll for due work, default 1s
	JobsWorkers       int           // EDULURE_JOBS_WORKERS: job attempts running at once per replica, default 10
	PprofAddr         string        // EDULURE_PPROF_ADDR: serve net/http/pprof on this loopback address; default off
	// BlobURL is EDULURE_BLOB_URL: the bucket of plugins' object storage,
	// file:///abs/dir or s3://bucket?endpoint=...&region=...; default none
	// (edulure dev: a directory under .data/). Without one, plugins'
	// storage calls answer 503.
	BlobURL string

	// The personal data lifecycle (docs/security.md, "Personal data").
	PrivacyMaxAttempts   int           // EDULURE_PRIVACY_MAX_ATTEMPTS: automatic attempts of an erasure or export before it waits for an admin, default 10
	PrivacyBackoff       time.Duration // EDULURE_PRIVACY_BACKOFF: delay after a failed attempt, doubling, default 30s
	PrivacyBackoffMax    time.Duration // EDULURE_PRIVACY_BACKOFF_MAX, default 1h
	PrivacyCallTimeout   time.Duration // EDULURE_PRIVACY_CALL_TIMEOUT: one export or erasure call into a plugin, default 10m
	ExportRetention      time.Duration // EDULURE_EXPORT_RETENTION: how long a person's export can be downloaded, default 168h
	ExportLinkTTL        time.Duration // EDULURE_EXPORT_LINK_TTL: lifetime of a signed download URL, default 5m
	OffboardingRetention time.Duration // EDULURE_OFFBOARDING_RETENTION: how long an offboarded institution's export is kept, default 720h

	MetricsToken string       // EDULURE_METRICS_TOKEN: /metrics wants "Authorization: Bearer <it>"; default none
	MetricsBasic string       // EDULURE_METRICS_BASIC_AUTH: "user:password" /metrics accepts as basic credentials; default none
	MetricsAllow []*net.IPNet // EDULURE_METRICS_ALLOW: comma-separated IPs or CIDRs that may read /metrics; default any

	// OTel holds the OTEL_* variables that are set (telemetry.Variables):
	// tracing, off unless they configure an exporter. The kernel passes
	// them on to its plugins.
	OTel map[string]string
}

// Load reads the configuration through getenv (os.Getenv in production).
// Every problem found is reported, each naming its variable.
func Load(getenv func(string) string) (Config, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	str := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	dur := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			bad(name, "must be a positive duration such as 15m or 30s, got %q", v)
			return def
		}
		return d
	}
	integer := func(name string, def, min, max int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min || n > max {
			bad(name, "must be an integer between %d and %d, got %q", min, max, v)
			return def
		}
		return n
	}
	boolean := func(name string, def bool) bool {
		v := getenv(name)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			bad(name, "must be true or false, got %q", v)
			return def
		}
		return b
	}

	c := Config{
		DatabaseURL:     str("DATABASE_URL", ""),
		Addr:            str("EDULURE_ADDR", ":8080"),
		Issuer:          str("EDULURE_ISSUER", "edulure"),
		AccessTokenTTL:  dur("EDULURE_ACCESS_TOKEN_TTL", 15*time.Minute),
		RefreshTokenTTL: dur("EDULURE_REFRESH_TOKEN_TTL", 30*24*time.Hour),
		LogFormat:       str("EDULURE_LOG_FORMAT", "auto"),
		LogLevel:        str("EDULURE_LOG_LEVEL", "info"),
		BodyLimit:       int64(integer("EDULURE_BODY_LIMIT_BYTES", 1<<20, 1024, 64<<20)),
		RequestTimeout:  dur("EDULURE_REQUEST_TIMEOUT", 30*time.Second),
		MigrateOnStart:  boolean("EDULURE_MIGRATE_ON_START", true),
		DBMaxConns:      int32(integer("EDULURE_DB_MAX_CONNS", 20, 2, 1000)),
		AuthRatePerIP:   integer("EDULURE_AUTH_RATE_PER_IP", 60, 1, 1_000_000),
		AuthRatePerUser: integer("EDULURE_AUTH_RATE_PER_ACCOUNT", 10, 1, 1_000_000),
		TrustProxy:      boolean("EDULURE_TRUST_PROXY", false),
		PluginsFile:     str("EDULURE_PLUGINS_FILE", "plugins.hcl"),
		DBRolePrefix:    str("EDULURE_DB_ROLE_PREFIX", ""),

		EventsMaxAttempts: integer("EDULURE_EVENTS_MAX_ATTEMPTS", 10, 1, 100),
		EventsBackoff:     dur("EDULURE_EVENTS_BACKOFF", time.Second),
		EventsBackoffMax:  dur("EDULURE_EVENTS_BACKOFF_MAX", 10*time.Minute),
		EventsPoll:        dur("EDULURE_EVENTS_POLL", time.Second),
		EventsRetention:   dur("EDULURE_EVENTS_RETENTION", 30*24*time.Hour),
		EventsPruneEvery:  dur("EDULURE_EVENTS_PRUNE_EVERY", 10*time.Minute),
		JobsMaxAttempts:   integer("EDULURE_JOBS_MAX_ATTEMPTS", 5, 1, 25),
		JobsTimeout:       dur("EDULURE_JOBS_TIMEOUT", time.Minute),
		JobsBackoff:       dur("EDULURE_JOBS_BACKOFF", 5*time.Second),
		JobsPoll:          dur("EDULURE_JOBS_POLL", time.Second),
		JobsWorkers:       integer("EDULURE_JOBS_WORKERS", 10, 1, 1000),
		PprofAddr:         str("EDULURE_PPROF_ADDR", ""),
		BlobURL:           str("EDULURE_BLOB_URL", ""),

		PrivacyMaxAttempts:   integer("EDULURE_PRIVACY_MAX_ATTEMPTS", 10, 1, 100),
		PrivacyBackoff:       dur("EDULURE_PRIVACY_BACKOFF", 30*time.Second),
		PrivacyBackoffMax:    dur("EDULURE_PRIVACY_BACKOFF_MAX", time.Hour),
		PrivacyCallTimeout:   dur("EDULURE_PRIVACY_CALL_TIMEOUT", 10*time.Minute),
		ExportRetention:      dur("EDULURE_EXPORT_RETENTION", 7*24*time.Hour),
		ExportLinkTTL:        dur("EDULURE_EXPORT_LINK_TTL", 5*time.Minute),
		OffboardingRetention: dur("EDULURE_OFFBOARDING_RETENTION", 30*24*time.Hour),
	}
	if c.ExportLinkTTL > time.Hour {
		bad("EDULURE_EXPORT_LINK_TTL", "must be at most 1h: download links are meant to be short-lived")
	}
	if c.PluginsFile == "none" {
		c.PluginsFile = ""
	}
	if c.DBRolePrefix != "" && !rolePrefix.MatchString(c.DBRolePrefix) {
		bad("EDULURE_DB_ROLE_PREFIX", "must be up to 20 lowercase letters, digits or underscores, starting with a letter, got %q", c.DBRolePrefix)
	}
	if c.DatabaseURL == "" {
		bad("DATABASE_URL", "is required (postgres://user:password@host:port/db)")
	} else if !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("DATABASE_URL", "must be a postgres:// URL")
	}
	if raw := getenv("EDULURE_SECRET_KEY"); raw == "" {
		bad("EDULURE_SECRET_KEY", "is required: 32 random bytes, hex or base64 (openssl rand -hex 32)")
	} else if key, err := decodeKey(raw); err != nil {
		bad("EDULURE_SECRET_KEY", "%v", err)
	} else {
		c.SecretKey = key
	}
	switch c.LogFormat {
	case "auto", "json", "text":
	default:
		bad("EDULURE_LOG_FORMAT", "must be auto, json or text, got %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("EDULURE_LOG_LEVEL", "must be trace, debug, info, warn or error, got %q", c.LogLevel)
	}
	if v := getenv("EDULURE_CORS_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			o = strings.TrimSpace(o)
			if o == "*" || strings.HasPrefix(o, "http://") || strings.HasPrefix(o, "https://") {
				c.CORSOrigins = append(c.CORSOrigins, o)
			} else if o != "" {
				bad("EDULURE_CORS_ORIGINS", "origin %q must start with http:// or https:// (or be *)", o)
			}
		}
	}
	if c.PprofAddr != "" {
		if host, _, err := net.SplitHostPort(c.PprofAddr); err != nil || net.ParseIP(host) == nil || !net.ParseIP(host).IsLoopback() {
			bad("EDULURE_PPROF_ADDR", "must be a loopback host:port such as 127.0.0.1:6060 (profiles are not for the network), got %q", c.PprofAddr)
		}
	}
	if c.BlobURL != "" {
		if err := objectstore.CheckURL(c.BlobURL); err != nil {
			bad("EDULURE_BLOB_URL", "%v", err)
		}
	}
	if v := getenv("EDULURE_METRICS_TOKEN"); v != "" {
		// Never repeated in an error: it is a credential.
		if len(strings.TrimSpace(v)) < 16 {
			bad("EDULURE_METRICS_TOKEN", "must be at least 16 characters (openssl rand -hex 16)")
		}
		c.MetricsToken = strings.TrimSpace(v)
	}
	if v := getenv("EDULURE_METRICS_BASIC_AUTH"); v != "" {
		if user, pass, ok := strings.Cut(v, ":"); !ok || user == "" || len(pass) < 12 {
			bad("EDULURE_METRICS_BASIC_AUTH", "must be user:password, with a password of at least 12 characters")
		}
		c.MetricsBasic = v
	}
	if v := getenv("EDULURE_METRICS_ALLOW"); v != "" {
		for _, item := range strings.Split(v, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			if !strings.Contains(item, "/") {
				if ip := net.ParseIP(item); ip != nil {
					bits := 128
					if ip.To4() != nil {
						ip, bits = ip.To4(), 32
					}
					c.MetricsAllow = append(c.MetricsAllow, &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)})
					continue
				}
			}
			_, n, err := net.ParseCIDR(item)
			if err != nil {
				bad("EDULURE_METRICS_ALLOW", "%q is neither an IP address nor a CIDR range such as 10.0.0.0/8", item)
				continue
			}
			c.MetricsAllow = append(c.MetricsAllow, n)
		}
	}
	c.OTel = map[string]string{}
	for _, k := range telemetry.Variables {
		if v := getenv(k); v != "" {
			c.OTel[k] = v
		}
	}
	if _, err := telemetry.Enabled(func(k string) string { return c.OTel[k] }); err != nil {
		errs = append(errs, err)
	}
	if c.AccessTokenTTL > 24*time.Hour {
		bad("EDULURE_ACCESS_TOKEN_TTL", "must be at most 24h: access tokens are meant to be short-lived")
	}
	return c, errors.Join(errs...)
}

func decodeKey(raw string) ([]byte, error) {
	raw = strings.TrimSpace(raw)
	if b, err := hex.DecodeString(raw); err == nil && len(b) == 32 {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(raw); err == nil && len(b) == 32 {
			return b, nil
		}
	}
	return nil, errors.New("must be exactly 32 bytes, written as 64 hex digits or base64")
}
