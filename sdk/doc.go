// Package sdk is what a plugin author writes an Edulure plugin with: a
// separately built process that serves REST routes, handles events and runs
// jobs under the kernel's one API, with its own Postgres schema guarded by
// row-level security.
//
// A plugin's main is one line, and the rest is behaviour:
//
//	func main() { sdk.Serve(attendance.New) }
//
//	func (p *Plugin) Manifest() sdk.Manifest {
//		return sdk.Manifest{
//			Name: "attendance", Version: "0.1.0",
//			Permissions: []sdk.Permission{{Name: "attendance.record.write", DefaultRoles: []string{"admin", "instructor"}}},
//			Routes: []sdk.Route{{
//				Method: "POST", Path: "/api/v1/attendance", Permission: "attendance.record.write",
//				Request: Mark{}, Response: Record{}, Status: 201, Handler: p.mark,
//			}},
//			Publishes:  []sdk.EventType{{Type: "attendance.record.marked.v1", Schema: Marked{}}},
//			Migrations: migrations, // //go:embed migrations/*.sql
//			Config:     Settings{LateAfterMinutes: 10},
//		}
//	}
//
// Bodies, queries, event data and configuration are Go types: the SDK
// generates their schemas (with the limits of their struct tags, see
// Route), the kernel enforces them before a handler runs, and
// /api/openapi.json documents them. A handler gets a *Request, runs its
// work in Request.Tx (a transaction scoped to the caller's institution) and
// returns a *Response or one of the errors of errors.go, which the kernel
// turns into problem+json. Request, Event and JobRun are each a Scope:
// Tx, Publish (an event in the same transaction), Config[T], and
// Storage(scope), the institution's object storage (a Bucket; the
// manifest declares CapStorage).
//
// A route can instead stream its answer as it makes it (Route.Stream, a
// StreamHandler writing to a Stream): Server-Sent Events with NewSSE,
// resumed from Request.LastEventID, or a large download; the kernel
// flushes each part to the client and ends the handler's context when the
// client goes away.
//
// # Packages
//
// For plugin authors:
//   - sdk: this package.
//   - sdk/plugintest: tests that run the handlers, events and jobs through
//     the code path of a served plugin against a real Postgres, as the
//     kernel would.
//
// Shared by the kernel and the SDK, not needed to write a plugin:
//   - sdk/wire: the protocol's handshake, the rules a manifest is checked
//     by, and the contract of a forwarded request (headers, query, body,
//     error kinds), applied alike by the kernel and plugintest.
//   - sdk/schema: schemas from Go types, and checking values against them.
//   - sdk/blobstore: object storage as the kernel serves it (key scoping,
//     limits, write-once, signed URLs), which plugintest serves too; its
//     blobstoretest is the conformance suite of storage drivers.
//   - sdk/proto/plugin/v1: the protocol's messages (docs/protocol.md).
//   - sdk/storage, sdk/pgcluster: provisioning a plugin's schema and roles,
//     and throwaway Postgres clusters for tests.
//   - sdk/telemetry: tracing configured by OTEL_*, the W3C trace context of
//     the protocol's traceparent fields, and the pgx tracer of SQL spans;
//     sdk/telemetry/otlptest, an OTLP collector to run inside a test.
//
// docs/plugins.md is the whole contract; docs/sdk-v1.2.md says what changed
// from v1.1, docs/sdk-v1.3.md what v1.3 adds (retention, governance).
package sdk
