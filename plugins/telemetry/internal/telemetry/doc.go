// Package telemetry is Edulure's telemetry plugin: consent, learning
// statements (xAPI 2.0), aggregates and hourly warehouse exports.
//
// Files: plugin.go (manifest and wiring), config.go, consent.go (policies,
// decisions and the consent judge, with the locking that serialises them
// with ingestion), statement.go (the xAPI statement checks), ingest.go
// (batches: COPY into staging, merge with ON CONFLICT, per-statement
// results), platform.go (courses' events as statements), rollup.go and
// aggregates.go (hourly rollups and the routes that read them),
// freshness.go, metrics.go, export.go (the TelemetryWarehouseJob and its
// route), personal.go (personal data, and the erasure that rewrites
// exports), jobs.go. The contract is docs/telemetry.md.
package telemetry
