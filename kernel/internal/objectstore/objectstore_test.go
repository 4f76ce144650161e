package objectstore_test

import (
	"context"
	"io"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/stretchr/testify/require"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/kernel/internal/objectstore"
	"github.com/edulure/edulure/sdk/blobstore"
	"github.com/edulure/edulure/sdk/blobstore/blobstoretest"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// suite runs the conformance suite on bucket with the kernel's Postgres
// index: the same tests sdk/blobstore runs with the memory index that
// sdk/plugintest uses.
func suite(t *testing.T, bucket *blob.Bucket) {
	pool, _ := dbtest.NewPool(t)
	index := objectstore.NewIndex(pool)
	blobstoretest.Run(t, func(t *testing.T, o blobstore.Options) *blobstore.Store { return blobstore.New(bucket, index, o) })
}

// The kernel's default driver: a directory.
func TestFileDriver(t *testing.T) {
	t.Parallel()
	bucket, err := objectstore.Open(t.Context(), "file://"+t.TempDir()+"/blobs")
	require.NoError(t, err)
	t.Cleanup(func() { bucket.Close() })
	suite(t, bucket)
}

// fakeS3 runs an S3 server in this process (gofakes3, memory backend) with
// one bucket and returns its URL.
func fakeS3(t *testing.T, bucket string) string {
	backend := s3mem.New()
	require.NoError(t, backend.CreateBucket(bucket))
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

// Any S3-compatible store, through the AWS SDK v2 as production uses it.
func TestS3Driver(t *testing.T) {
	t.Parallel()
	endpoint := fakeS3(t, "edulure")
	client := s3.New(s3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test-secret", ""),
	})
	bucket, err := s3blob.OpenBucket(t.Context(), client, "edulure", nil)
	require.NoError(t, err)
	t.Cleanup(func() { bucket.Close() })
	suite(t, bucket)
}

// An s3:// EDULURE_BLOB_URL opens with the SDK's usual credentials.
func TestOpenS3URL(t *testing.T) {
	endpoint := fakeS3(t, "media")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test-secret")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	bucket, err := objectstore.Open(t.Context(), "s3://media?endpoint="+endpoint+"&region=us-east-1&use_path_style=true")
	require.NoError(t, err)
	defer bucket.Close()
	ctx := context.Background()
	require.NoError(t, bucket.WriteAll(ctx, "plugins/x/platform/a", []byte("hello"), nil))
	r, err := bucket.NewReader(ctx, "plugins/x/platform/a", nil)
	require.NoError(t, err)
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"file:///var/lib/edulure/blobs", "file://localhost/srv/blobs", "s3://media?endpoint=https://minio:9000&region=us-east-1&use_path_style=true", "s3://bucket"} {
		require.NoError(t, objectstore.CheckURL(ok), ok)
	}
	for bad, want := range map[string]string{
		"file://./relative":      "absolute directory",
		"file:relative/dir":      "absolute directory",
		"s3://":                  "names its bucket",
		"gs://bucket":            "file:// (a directory) or s3://",
		"/var/lib/edulure/blobs": "file:// (a directory) or s3://",
		"::":                     "not a URL",
	} {
		err := objectstore.CheckURL(bad)
		require.Error(t, err, bad)
		require.True(t, strings.Contains(err.Error(), want), "%s: %v", bad, err)
	}
}
