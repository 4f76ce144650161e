package jobs

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestAttemptTimedOut(t *testing.T) {
	t.Parallel()
	dl := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name        string
		err         error
		hasDeadline bool
		now         time.Time
		want        bool
	}{
		{name: "context done at its deadline", err: context.DeadlineExceeded, hasDeadline: true, now: dl, want: true},
		{name: "deadline passed, timer not yet fired", hasDeadline: true, now: dl.Add(time.Millisecond), want: true},
		{name: "at the deadline to the nanosecond", hasDeadline: true, now: dl, want: true},
		{name: "failed before the deadline", err: errors.New("boom"), hasDeadline: true, now: dl.Add(-time.Second)},
		{name: "canceled, not timed out", err: context.Canceled, hasDeadline: true, now: dl.Add(-time.Second)},
		{name: "no deadline", now: dl},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, attemptTimedOut(tc.err, dl, tc.hasDeadline, tc.now))
		})
	}
}
