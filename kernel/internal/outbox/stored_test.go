package outbox_test

import (
	"bytes"
	"context"
	"os"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/edulure/edulure/kernel/internal/dbtest"
	"github.com/edulure/edulure/kernel/internal/outbox"
	"github.com/edulure/edulure/kernel/internal/seal"
)

func TestMain(m *testing.M) { os.Exit(dbtest.Main(m)) }

// Events written before sealing keep their tokens in the clear: the kernel
// seals them at start, once, and they still open for delivery.
func TestSealStored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, _ := dbtest.NewPool(t)
	s, err := seal.New(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)

	logged, queued, other := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	_, err = pool.Exec(ctx, `INSERT INTO kernel.events (id, type, source, data, occurred_at) VALUES
		($1, 'identity.password_reset.requested.v1', 'kernel', '{"email":"a@uni.test","token":"edp_old"}', now()),
		($2, 'identity.user.created.v1', 'kernel', '{"email":"a@uni.test","token":"not secret here"}', now())`, logged, other)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO kernel.outbox (id, type, data) VALUES ($1, 'tenancy.invitation.created.v1', '{"token":"edi_old","roles":[]}')`, queued)
	require.NoError(t, err)

	n, err := outbox.SealStored(ctx, pool, s)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = outbox.SealStored(ctx, pool, s)
	require.NoError(t, err)
	require.Zero(t, n, "sealed once")

	for _, tc := range []struct {
		table, typ, plain string
		id                uuid.UUID
	}{
		{"kernel.events", "identity.password_reset.requested.v1", "edp_old", logged},
		{"kernel.outbox", "tenancy.invitation.created.v1", "edi_old", queued},
	} {
		var data []byte
		require.NoError(t, pool.QueryRow(ctx, "SELECT data FROM "+tc.table+" WHERE id = $1", tc.id).Scan(&data))
		require.NotContains(t, string(data), tc.plain)
		opened, err := outbox.Open(s, tc.id.String(), tc.typ, data)
		require.NoError(t, err)
		require.Contains(t, string(opened), tc.plain)
	}
	var data string
	require.NoError(t, pool.QueryRow(ctx, "SELECT data::text FROM kernel.events WHERE id = $1", other).Scan(&data))
	require.Contains(t, data, "not secret here", "events without secrets are left alone")
}
