package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/config"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

const goodKey = "0000000000000000000000000000000000000000000000000000000000000001"

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@localhost/db", "EDULURE_SECRET_KEY": goodKey}))
	require.NoError(t, err)
	require.Equal(t, ":8080", c.Addr)
	require.Equal(t, 15*time.Minute, c.AccessTokenTTL)
	require.Len(t, c.SecretKey, 32)
	require.True(t, c.MigrateOnStart)
	require.Empty(t, c.BlobURL, "no object storage unless configured (edulure dev sets a directory)")

	c, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://x@localhost/db", "EDULURE_SECRET_KEY": goodKey,
		"EDULURE_BLOB_URL": "s3://media?endpoint=https://minio.internal:9000&region=us-east-1&use_path_style=true"}))
	require.NoError(t, err)
	require.Equal(t, "s3://media?endpoint=https://minio.internal:9000&region=us-east-1&use_path_style=true", c.BlobURL)
}

// The /metrics settings and the OTEL_* variables are read; a secret is
// never repeated in an error.
func TestLoadMetricsAndTracing(t *testing.T) {
	t.Parallel()
	c, err := config.Load(env(map[string]string{
		"DATABASE_URL": "postgres://x@localhost/db", "EDULURE_SECRET_KEY": goodKey,
		"EDULURE_METRICS_TOKEN": "0123456789abcdef0123", "EDULURE_METRICS_BASIC_AUTH": "prom:a-long-password",
		"EDULURE_METRICS_ALLOW":       "10.1.2.3, 192.168.0.0/16, ::1",
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SERVICE_NAME": "lms", "UNRELATED": "x",
	}))
	require.NoError(t, err)
	require.Equal(t, "0123456789abcdef0123", c.MetricsToken)
	require.Equal(t, "prom:a-long-password", c.MetricsBasic)
	require.Len(t, c.MetricsAllow, 3)
	require.Equal(t, "10.1.2.3/32", c.MetricsAllow[0].String())
	require.Equal(t, "::1/128", c.MetricsAllow[2].String())
	require.Equal(t, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SERVICE_NAME": "lms"}, c.OTel)

	_, err = config.Load(env(map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey, "EDULURE_METRICS_TOKEN": "tiny-secret", "EDULURE_METRICS_BASIC_AUTH": "u:short-pass"}))
	require.Error(t, err)
	require.NotContains(t, err.Error(), "tiny-secret")
	require.NotContains(t, err.Error(), "short-pass")
}

func TestLoadNamesEveryBadVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"missing required", map[string]string{}, []string{"DATABASE_URL: is required", "EDULURE_SECRET_KEY: is required"}},
		{"short key", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": "abcd"}, []string{"EDULURE_SECRET_KEY: must be exactly 32 bytes"}},
		{"bad duration", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey, "EDULURE_ACCESS_TOKEN_TTL": "soon"}, []string{"EDULURE_ACCESS_TOKEN_TTL: must be a positive duration"}},
		{"bad bool and int", map[string]string{"DATABASE_URL": "mysql://x", "EDULURE_SECRET_KEY": goodKey, "EDULURE_MIGRATE_ON_START": "maybe", "EDULURE_DB_MAX_CONNS": "-3"}, []string{"DATABASE_URL: must be a postgres:// URL", "EDULURE_MIGRATE_ON_START: must be true or false", "EDULURE_DB_MAX_CONNS: must be an integer"}},
		{"relative blob directory", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey, "EDULURE_BLOB_URL": "file://./blobs"}, []string{"EDULURE_BLOB_URL: a file URL names an absolute directory"}},
		{"unknown blob scheme", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey, "EDULURE_BLOB_URL": "azblob://container"}, []string{"EDULURE_BLOB_URL: the scheme must be file:// (a directory) or s3://"}},
		{"bad origin", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey, "EDULURE_CORS_ORIGINS": "https://a.example, ftp://b"}, []string{`EDULURE_CORS_ORIGINS: origin "ftp://b"`}},
		{"bad metrics settings", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey,
			"EDULURE_METRICS_TOKEN": "short", "EDULURE_METRICS_BASIC_AUTH": "nopassword", "EDULURE_METRICS_ALLOW": "10.0.0.0/8, localhost"},
			[]string{"EDULURE_METRICS_TOKEN: must be at least 16", "EDULURE_METRICS_BASIC_AUTH: must be user:password", `EDULURE_METRICS_ALLOW: "localhost"`}},
		{"bad tracing", map[string]string{"DATABASE_URL": "postgres://x/y", "EDULURE_SECRET_KEY": goodKey, "OTEL_TRACES_EXPORTER": "jaeger"}, []string{"OTEL_TRACES_EXPORTER"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := config.Load(env(tt.env))
			require.Error(t, err)
			for _, w := range tt.want {
				require.True(t, strings.Contains(err.Error(), w), "error %q should contain %q", err, w)
			}
		})
	}
}
