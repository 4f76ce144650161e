package command

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

func TestUserCreate(t *testing.T) {
	r := run("user-create", "-name", "A")
	require.Equal(t, 2, r.code, r)
	require.Contains(t, r.stderr, "-email")

	adminDatabase(t)
	require.Equal(t, 0, run("tenant-create", "-slug", "uni", "-name", "Uni").code)
	r = run("user-create", "-email", "a@uni.test", "-name", "A", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "EDULURE_USER_PASSWORD: is required")

	t.Setenv("EDULURE_USER_PASSWORD", "password")
	r = run("user-create", "-email", "a@uni.test", "-name", "A", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "password", "a weak password is refused with a reason")

	t.Setenv("EDULURE_USER_PASSWORD", "correct-Horse-battery-9")
	r = run("user-create", "-email", "a@uni.test", "-name", "A", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 0, r.code, r)
	require.Contains(t, r.stdout, "user a@uni.test (")
	require.Contains(t, r.stdout, ") ready")

	r = run("user-create", "-email", "b@uni.test", "-name", "B", "-tenant", "nowhere")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "edulure user-create: ")

	// An account someone signed up with an address they never proved is
	// given no role from the console either (issue 15): the operator is
	// told to invite the address.
	conn, err := pgx.Connect(context.Background(), os.Getenv("DATABASE_URL"))
	require.NoError(t, err)
	_, err = conn.Exec(context.Background(), `INSERT INTO kernel.users (id, email, display_name, password_hash) VALUES (gen_random_uuid(), 'dean@uni.test', 'Squatter', 'x')`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(context.Background()))
	r = run("user-create", "-email", "dean@uni.test", "-name", "Dean", "-tenant", "uni", "-roles", "admin")
	require.Equal(t, 1, r.code, r)
	require.Contains(t, r.stderr, "has not verified its email address")
	require.Contains(t, r.stderr, "invite the address")
}
