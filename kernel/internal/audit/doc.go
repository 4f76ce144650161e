// Package audit appends privileged actions to the kernel's append-only audit
// log. Entries form one hash chain per tenant (and one, "platform", for
// actions outside any tenant): each entry's SHA-256 covers the previous
// entry's hash and the entry's canonical content, so an edited, removed or
// reordered row is detected by Verify.
//
// Personal values (who acted, on whom, the details, the caller's address)
// are kept out of the hashed content so that a person's erasure can remove
// them and leave the chain verifiable (docs/security.md, "The audit log and
// erasure"): an entry hashes a salted SHA-256 commitment to each value, and
// the values with their salts live in kernel.audit_personal, where Redact
// empties them. Entries written before that design (format 1) hash their
// values; an anchor in the chain's first later entry covers what stays of
// them once their values are erased.
package audit
