package privacy

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/audit"
)

func TestScrubber(t *testing.T) {
	t.Parallel()
	ada := audit.Person{UserID: "0199aaaa-0000-7000-8000-000000000001", Email: "ada@uni.test", Name: "Ada Lovelace"}
	al := audit.Person{UserID: "0199aaaa-0000-7000-8000-000000000002", Email: "al@uni.test", Name: "Al"}
	sc := newScrubber([]audit.Person{ada, al}, []string{"pseudo-1", "pseudo-2"})
	for _, tt := range []struct{ name, in, want string }{
		{"id to its pseudonym", "user:0199AAAA-0000-7000-8000-000000000001", "user:pseudo-1"},
		{"each their own", "0199aaaa-0000-7000-8000-000000000002 graded 0199aaaa-0000-7000-8000-000000000001", "pseudo-2 graded pseudo-1"},
		{"address", "mail ADA@uni.test now", "mail [erased] now"},
		{"name as words", "Certificate of ada lovelace, with honours", "Certificate of [erased], with honours"},
		{"not inside a word", "Ada Lovelaces and XAda Lovelace", "Ada Lovelaces and XAda Lovelace"},
		{"short names are left", "Al was here", "Al was here"},
		{"the second address", "al@uni.test", "[erased]"},
		{"nothing", "nothing here", "nothing here"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, changed := sc.text(tt.in)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.in != tt.want, changed)
		})
	}
	v, changed := sc.json(map[string]any{"learner": map[string]any{"id": ada.UserID, "name": "Ada Lovelace"}, "scores": []any{1.0, "ada@uni.test"}})
	require.True(t, changed)
	require.Equal(t, map[string]any{"learner": map[string]any{"id": "pseudo-1", "name": "[erased]"}, "scores": []any{1.0, "[erased]"}}, v)
}
