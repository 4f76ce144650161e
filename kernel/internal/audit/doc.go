// Package audit appends privileged actions to the kernel's append-only audit
// log. Entries form one hash chain per tenant (and one, "platform", for
// actions outside any tenant): each entry's SHA-256 covers the previous
// entry's hash and the entry's canonical content, so an edited, removed or
// reordered row is detected by Verify.
package audit
