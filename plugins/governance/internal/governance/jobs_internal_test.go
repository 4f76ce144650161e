package governance

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestDueSlot(t *testing.T) {
	t.Parallel()
	sydney, err := time.LoadLocation("Australia/Sydney")
	require.NoError(t, err)
	now := time.Date(2026, 12, 1, 1, 50, 0, 0, time.UTC) // 12:50 in Sydney
	slot, err := dueSlot("0 2 * * *", sydney, now)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC), slot.UTC(), "02:00 in Sydney today")
	slot, err = dueSlot("0 13 * * *", sydney, now)
	require.NoError(t, err)
	require.Equal(t, time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC), slot.UTC(), "13:00 in Sydney yesterday: today's is not due yet")
	slot, err = dueSlot("0 0 29 2 *", time.UTC, now)
	require.NoError(t, err)
	require.True(t, slot.IsZero(), "no slot within two days")
	_, err = dueSlot("every night", time.UTC, now)
	require.Error(t, err)
}

// FuzzDueSlot: an institution's schedule is its own text; whatever it is,
// the job answers an error or a slot at or before now, never panics.
func FuzzDueSlot(f *testing.F) {
	for _, s := range []string{"0 2 * * *", "*/15 * * * *", "@daily", "0 0 31 2 *", "60 25 * * *", "1-5/0 * * * *", "TZ=Europe/Paris 0 2 * * *"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 1, 50, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, schedule string) {
		slot, err := dueSlot(schedule, time.UTC, now)
		if err == nil && slot.After(now) {
			t.Fatalf("%q: slot %s after now", schedule, slot)
		}
	})
}
