package sdk_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/edulure/edulure/sdk"
)

// A handler stores the request's upload in its institution's storage,
// once: a second upload to the key is a 409 the kernel answers for it.
// The manifest declares Capabilities: []sdk.Capability{sdk.CapStorage}.
func ExampleStorage() {
	_ = func(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
		key := "submissions/" + r.Param("assignment_id") + "/" + r.Principal.UserID + ".json"
		obj, err := sdk.Storage(r).Put(ctx, key, bytes.NewReader(r.Body), sdk.PutOptions{ContentType: "application/json", IfNotExists: true})
		if err != nil {
			return nil, err // ErrConflict, ErrTooLarge, ErrInvalid...: the kernel's problem+json
		}
		return sdk.JSON(http.StatusCreated, map[string]any{"key": obj.Key, "sha256": obj.SHA256})
	}
}

// An export streams out as it is written: a pipe between the CSV writer and
// Put, so no more than a chunk of it is ever in memory.
func ExampleBucket_Put() {
	_ = func(ctx context.Context, run *sdk.JobRun, rows func(yield func([]string) bool)) (sdk.Object, error) {
		pr, pw := io.Pipe()
		go func() {
			w := csv.NewWriter(pw)
			for row := range rows {
				if err := w.Write(row); err != nil {
					break
				}
			}
			w.Flush()
			pw.CloseWithError(w.Error())
		}()
		return sdk.Storage(run).Put(ctx, "exports/"+run.ID+".csv", pr, sdk.PutOptions{ContentType: "text/csv"})
	}
}

// Reading streams too: copy the object where it goes, and close it.
func ExampleBucket_Get() {
	_ = func(ctx context.Context, ev *sdk.Event, w io.Writer) error {
		rd, obj, err := sdk.Storage(ev).Get(ctx, "exports/latest.csv")
		if err != nil {
			return err // sdk.ErrNotFound when there is none
		}
		defer rd.Close()
		_, err = io.Copy(w, rd)
		_ = obj.SHA256 // recorded by the kernel as the object was stored
		return err
	}
}

// A client downloads or uploads directly with a signed URL, holding no
// token: GET when the object exists, PUT (through the kernel, under the
// plugin's limits) to let a browser upload.
func ExampleBucket_SignedURL() {
	_ = func(ctx context.Context, r *sdk.Request) (*sdk.Response, error) {
		put, err := sdk.Storage(r).SignedURL(ctx, "avatars/"+r.Principal.UserID+".png", http.MethodPut, 10*time.Minute,
			sdk.SignedURLOptions{ContentType: "image/png"})
		if err != nil {
			return nil, err
		}
		return sdk.JSON(http.StatusOK, map[string]string{"upload_url": put})
	}
}

// Pages of a listing follow NextCursor.
func ExampleBucket_List() {
	_ = func(ctx context.Context, b *sdk.Bucket) (total int64, err error) {
		cursor := ""
		for {
			page, err := b.List(ctx, "exports/", cursor, 100)
			if err != nil {
				return 0, err
			}
			for _, o := range page.Objects {
				total += o.Size
			}
			if cursor = page.NextCursor; cursor == "" {
				return total, nil
			}
		}
	}
}

// Platform jobs have no institution: their storage is the platform scope,
// from Env (Capabilities: sdk.CapPlatformStorage).
func ExampleEnv_PlatformStorage() {
	type plugin struct{ env *sdk.Env }
	_ = func(p *plugin, ctx context.Context, run *sdk.JobRun) error {
		_, err := p.env.PlatformStorage().Put(ctx, "catalogue/"+run.ScheduledAt.Format("2006-01-02")+".json", strings.NewReader("{}"), sdk.PutOptions{ContentType: "application/json"})
		return err
	}
}
