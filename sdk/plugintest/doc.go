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
// New refuses a manifest the kernel would refuse (Check: the rules of
// wire.CheckManifest, the schemas of bodies, queries, events and
// configuration, job schedules, migrations; not what needs the kernel's
// state, such as another plugin's routes). Do then does what the kernel's
// proxy does with a request for a plugin route: it finds the route, checks
// credentials, the plugin's enablement for the institution and the route's
// permission (answering 401, 403, 404 or 405 as the kernel does), checks
// the declared query parameters and the body against the route's schemas
// (wire.Contract, the kernel's own code: 400 or 422 naming each field),
// fills Request.Config from the institution's configuration
// (SetTenantConfig), passes on only the headers the kernel passes on, and
// calls the handler through the code path of a served plugin: a panic
// becomes a 500 and a returned sdk error becomes the problem+json answer
// the kernel sends. A success answer whose JSON body does not match the
// route's Response schema fails the test. User principals get the
// permissions the manifest grants their roles by default, as in an
// institution that kept the default grants; Join makes a user a member of
// a second institution. The kernel's conformance test sends the same
// requests through a real kernel and through Do and expects the same
// answers.
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
// A Harness also drives a plugin's subscriptions and jobs through the code
// paths of a served plugin, and Publish checks events against the manifest
// as in production:
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
// # Personal data
//
// New also runs the coverage check of personal data: it fails the test,
// naming each table and column, when a column of the plugin's schema looks
// personal (a user's ID, *_by, an email address, a person's name, contact
// data, a comment saying "Personal", free text beside them; see
// storage.Suspects) and no data class of Manifest.PersonalData describes
// it or lists it as not personal. The helpers run the served plugin's code:
//
//	ex := h.ExportPersonalData(t, tenant, learner)   // the stream, checked against its manifest
//	require.Len(t, ex.Rows("enrolments"), 1)
//	counts := h.ErasePersonalData(t, tenant, learner) // then: export empty, a second erasure changes nothing
//	h.RequireNoTrace(t, learner, "Zephyrine Quillfeather", "zq@example.test")
//	h.EraseTenant(t, tenant)                          // then: no row of the institution left
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
