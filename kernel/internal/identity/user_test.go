package identity_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/identity"
)

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, pw, email string
		ok              bool
	}{
		{"strong passphrase", "correct-Horse-battery-9", "ada@example.edu", true},
		{"too short", "Ab1!xyz", "", false},
		{"common stem with digits", "password123", "", false},
		{"common stem with symbols", "Welcome2024!", "", false},
		{"digits only", "12345678901234", "", false},
		{"low entropy", "aaaaaaaaaaaaaaaa", "", false},
		{"contains email name", "lovelace-Horse-77", "lovelace@example.edu", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fe := identity.ValidatePassword("password", tt.pw, tt.email)
			if tt.ok {
				require.Nil(t, fe)
			} else {
				require.NotNil(t, fe)
				require.Equal(t, "password", fe.Field)
			}
		})
	}
}

func TestValidateEmail(t *testing.T) {
	t.Parallel()
	for _, good := range []string{"ada@example.edu", " ada@uni.example.org "} {
		_, fe := identity.ValidateEmail(good)
		require.Nil(t, fe, good)
	}
	for _, bad := range []string{"", "ada", "ada@localhost", "Ada <ada@example.edu>", "a@b.c'; DROP TABLE x;--"} {
		_, fe := identity.ValidateEmail(bad)
		require.NotNil(t, fe, bad)
	}
}
