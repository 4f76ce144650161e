package objectstore

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	"gocloud.dev/blob"
	_ "gocloud.dev/blob/fileblob" // file:// URLs
	_ "gocloud.dev/blob/s3blob"   // s3:// URLs
)

// Schemes are the bucket URL schemes the kernel opens.
var Schemes = []string{"file", "s3"}

// CheckURL says what is wrong with a bucket URL, without opening it.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("not a URL: %w", err)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return fmt.Errorf("a file URL names an absolute directory, file:///var/lib/edulure/blobs, got host %q", u.Host)
		}
		if !filepath.IsAbs(filepath.FromSlash(u.Path)) {
			return fmt.Errorf("a file URL names an absolute directory, file:///var/lib/edulure/blobs, got %q", u.Path)
		}
	case "s3":
		if u.Host == "" {
			return fmt.Errorf("an s3 URL names its bucket: s3://bucket?endpoint=https://...&region=...")
		}
	default:
		return fmt.Errorf("the scheme must be file:// (a directory) or s3:// (any S3-compatible store), got %q", u.Scheme)
	}
	return nil
}

// Open opens the bucket of a URL. A directory is created if missing, and
// keeps its temporary files beside the objects (so that storing one is a
// rename on one file system); an s3:// URL takes the AWS SDK's usual
// credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or a profile)
// and the query parameters endpoint, region and use_path_style.
func Open(ctx context.Context, raw string) (*blob.Bucket, error) {
	if err := CheckURL(raw); err != nil {
		return nil, fmt.Errorf("EDULURE_BLOB_URL: %w", err)
	}
	u, _ := url.Parse(raw)
	if u.Scheme == "file" {
		if err := os.MkdirAll(filepath.FromSlash(u.Path), 0o750); err != nil {
			return nil, fmt.Errorf("creating the object storage directory: %w", err)
		}
		q := u.Query()
		if q.Get("no_tmp_dir") == "" {
			q.Set("no_tmp_dir", "1")
		}
		u.RawQuery = q.Encode()
	}
	b, err := blob.OpenBucket(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("opening object storage %s://%s: %w", u.Scheme, u.Host+u.Path, err)
	}
	return b, nil
}
