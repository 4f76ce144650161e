package outbox

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/seal"
)

func testSealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, 32))
	require.NoError(t, err)
	return s
}

func TestSealAndOpenSecretFields(t *testing.T) {
	t.Parallel()
	s := testSealer(t, 1)
	const id = "01a23010-d5c2-7bf0-887a-e0a8cb0b5dde"
	data := []byte(`{"email":"a@uni.test","token":"edp_secret","user_id":"u1"}`)

	sealed, err := sealData(s, id, PasswordResetRequested, data)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), "edp_secret")
	var m map[string]string
	require.NoError(t, json.Unmarshal(sealed, &m))
	require.True(t, strings.HasPrefix(m["token"], SealedPrefix), "%s", sealed)
	require.Equal(t, "a@uni.test", m["email"], "other fields stay readable")

	opened, err := Open(s, id, PasswordResetRequested, sealed)
	require.NoError(t, err)
	require.JSONEq(t, string(data), string(opened))

	_, err = Open(testSealer(t, 2), id, PasswordResetRequested, sealed)
	require.ErrorIs(t, err, seal.ErrOpen, "another EDULURE_SECRET_KEY cannot open it")
	_, err = Open(s, "01a23010-0000-7000-8000-000000000000", PasswordResetRequested, sealed)
	require.ErrorIs(t, err, seal.ErrOpen, "a sealed field moved to another event cannot be opened")

	// Types without secrets, and plugins' events, pass as they are.
	plain := []byte(`{"user_id":"u1","token":"not a secret here"}`)
	out, err := sealData(s, id, MemberJoined, plain)
	require.NoError(t, err)
	require.Equal(t, plain, out)
	out, err = Open(s, id, "courses.course.published.v1", plain)
	require.NoError(t, err)
	require.Equal(t, plain, out)

	_, err = sealData(nil, id, InvitationCreated, []byte(`{"token":"edi_x"}`))
	require.ErrorContains(t, err, "needs a sealer", "an event with secrets is never written in the clear")
}

// Every kernel event field that looks like a secret is sealed: a new event
// type with a token (an email verification, say) must be listed in
// secretFields.
func TestSecretFieldsListed(t *testing.T) {
	t.Parallel()
	for _, typ := range Types {
		var sch struct {
			Properties map[string]json.RawMessage `json:"properties"`
		}
		require.NoError(t, json.Unmarshal(typ.Schema, &sch), typ.Type)
		for name := range sch.Properties {
			secretish := false
			for _, w := range []string{"token", "secret", "password", "code", "key"} {
				if strings.Contains(name, w) {
					secretish = true
				}
			}
			if secretish {
				require.True(t, slices.Contains(SecretFields(typ.Type), name), "field %s of %s looks secret: list it in secretFields", name, typ.Type)
			}
		}
	}
}
