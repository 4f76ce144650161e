// Package privacy runs the personal data lifecycle of the kernel
// (docs/security.md, "Personal data"): a person's data export, the
// erasure of a person from an institution, and the offboarding of an
// institution, across the kernel's own data and every plugin's
// (ExportPersonalData, ErasePersonalData and EraseTenantData, protocol
// v1.2).
//
// An export is a River job that writes one archive (every plugin's part,
// the kernel's, and a manifest of files, sizes and SHA-256) to the object
// storage under the kernel's prefix; it is downloaded through a
// short-lived signed URL the kernel serves and audits.
//
// An erasure or an offboarding is a request with steps: for an erasure,
// "kernel:access" (the person loses their membership and sessions), one
// "plugin:<name>" per plugin that declares personal data, and
// "kernel:data" (the kernel's own records, the audit log's values, the
// account when it was their last institution) once every plugin is done;
// for an offboarding, "export", one "plugin:<name>" per plugin, and
// "kernel:data". Each step goes pending -> running -> done | failed; a
// request waits out its cool-off (scheduled), then runs (running), retries
// failed steps with backoff (retrying), and is completed only when every
// step is done. When the automatic attempts are spent it is failed, and an
// admin resumes it (Resume) without touching the database. Every
// transition is kept in the request's history and audited.
package privacy
