// Package plugintest runs a plugin's route handlers inside a Go test,
// without the kernel, against a real PostgreSQL database set up exactly as
// the kernel sets it up: the schema plugin_<name>, the plugin's own login
// role, its migrations, and forced row-level security on every table with a
// tenant_id column (by calling storage.Provision, as the kernel does).
//
// A test builds a Harness for its plugin and sends requests as principals:
//
//	func TestMain(m *testing.M) { os.Exit(plugintest.Main(m)) }
//
//	func TestAward(t *testing.T) {
//		h := plugintest.New(t, gamification.New())
//		tenant := plugintest.NewTenant()
//		res := h.Do(plugintest.User(tenant, "instructor"), "POST", "/api/v1/leaderboard/points",
//			map[string]any{"user_id": plugintest.NewID(), "points": 5})
//		require.Equal(t, 201, res.Status, res)
//	}
//
// New refuses a manifest the kernel would refuse (the rules that need no
// JSON Schema, OpenAPI or cron parser). Do then does what the kernel's
// proxy does with a request for a plugin route: it finds the route, checks
// credentials, the plugin's enablement for the institution and the route's
// permission (answering 401, 403, 404 or 405 as the kernel does), fills
// Request.Config from the institution's configuration (SetTenantConfig),
// passes on only the headers the kernel passes on, and calls the handler
// through sdk.Dispatch, the code path of a served plugin: a panic becomes a
// 500 and a returned sdk error becomes the problem+json answer the kernel
// sends. User principals get the permissions the manifest grants their
// roles by default, as in an institution that kept the default grants.
//
// # The database
//
// When TEST_DATABASE_URL is set (make test sets it) it is the admin
// connection string. Otherwise the first Harness starts one throwaway
// PostgreSQL cluster for the whole test binary from the server binaries on
// the machine (see sdk/pgcluster). Call Main from TestMain so the cluster is
// stopped and removed when the tests end; without Main, a watchdog process
// stops and removes it once the test binary has exited. Each Harness gets
// its own database and its own roles, dropped in t.Cleanup, so tests may run
// in parallel.
package plugintest
