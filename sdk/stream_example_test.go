package sdk_test

import (
	"context"
	"encoding/csv"
	"strconv"
	"time"

	"github.com/edulure/edulure/sdk"
)

// notification is what the example feed sends.
type notification struct {
	ID   int64  `json:"id"`
	Text string `json:"text"`
}

// inbox stands in for where a plugin keeps notifications: since returns
// those after an ID, and next waits for the next one.
type inbox interface {
	since(ctx context.Context, tenant string, afterID int64) ([]notification, error)
	next(ctx context.Context, tenant string) (<-chan notification, func())
}

// A feed of Server-Sent Events that a reconnecting client resumes: what it
// missed after Last-Event-ID first, then each notification as it comes.
func ExampleNewSSE() {
	var box inbox // the plugin's
	feed := func(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
		live, stop := box.next(ctx, req.Tenant()) // listen first: nothing falls between the two
		defer stop()
		var missed []notification
		if id := req.LastEventID(); id != "" {
			after, err := strconv.ParseInt(id, 10, 64)
			if err != nil {
				return sdk.Errorf(sdk.ErrBadRequest, "Last-Event-ID %q is not one of ours", id) // a 400: nothing sent yet
			}
			if missed, err = box.since(ctx, req.Tenant(), after); err != nil {
				return err
			}
		}
		sse := sdk.NewSSE(w) // the head goes out; heartbeats while silent
		send := func(n notification) error {
			return sse.Send(sdk.SSEEvent{ID: strconv.FormatInt(n.ID, 10), Event: "notification", Data: n, Retry: 5 * time.Second})
		}
		for _, n := range missed {
			if err := send(n); err != nil {
				return err
			}
		}
		for {
			select {
			case <-ctx.Done(): // the client left, or a stream limit ended it
				return nil
			case n := <-live:
				if err := send(n); err != nil {
					return err
				}
			}
		}
	}
	_ = sdk.Route{Method: "GET", Path: "/api/v1/notifications/stream", Permission: "messaging.notification.read", Stream: feed}
}

// A download written as it is read: the kernel passes each 64 KiB part on
// at once, so neither process holds the file.
func ExampleStreamHandler() {
	export := func(ctx context.Context, req *sdk.Request, w *sdk.Stream) error {
		_ = w.SetHeader("Content-Disposition", `attachment; filename="scores.csv"`)
		out := csv.NewWriter(w)
		for i := range 1_000_000 {
			if err := ctx.Err(); err != nil {
				return err // the client went away
			}
			if err := out.Write([]string{strconv.Itoa(i), "score"}); err != nil {
				return err
			}
		}
		out.Flush()
		return out.Error() // nil: the response completes; an error now cuts it short
	}
	_ = sdk.Route{Method: "GET", Path: "/api/v1/scores/export", Permission: "scores.score.read", ContentType: "text/csv", Stream: export}
}
