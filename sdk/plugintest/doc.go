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
// New refuses a manifest the kernel would refuse (the rules of
// wire.CheckManifest, the schemas of the events it publishes, the shape of
// job schedules; not what needs OpenAPI or the kernel's state). Do then does what the kernel's
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
// # Streamed answers
//
// Stream (and StreamRequest) sends a request for a streamed route
// (Route.Stream) through the same checks and returns once the answer's
// status and headers have arrived; NextEvent reads it as Server-Sent
// Events, Next part by part, Read as an io.Reader, and Close cancels the
// handler as a client leaving does:
//
//	s := h.Stream(plugintest.User(tenant, "learner"), "GET", "/api/v1/notifications/stream")
//	ev, ok := s.NextEvent()
//	s.Close()
//
// # Events and jobs
//
// Since v1.1 a Harness also drives a plugin's subscriptions and jobs through
// the code paths of a served plugin (sdk.DispatchEvents, sdk.DispatchJob),
// and Env.DB is built with sdk.NewDB, so Publish checks events against the
// manifest as in production:
//
//	ev := plugintest.Event{ID: plugintest.NewEventID(), Type: "courses.lesson.completed.v1",
//		TenantID: tenant, Data: map[string]any{"user_id": learner, "lesson_id": lesson}}
//	require.NoError(t, h.Deliver(t, ev))
//	require.NoError(t, h.Deliver(t, ev)) // a redelivery: applied once
//	require.Len(t, h.Published(t, tenant), 1)
//
//	out, err := h.RunJob(t, "leaderboard-snapshot", plugintest.JobRun{TenantID: tenant, Trigger: "schedule"})
//
// Deliver returns the handler's error; RunJob returns the run's output and
// its error as the kernel reads it. Published lists what the plugin wrote
// to its outbox in transactions that committed: what the kernel's relay
// would publish.
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
