// Package problem renders errors as RFC 9457 application/problem+json. It is
// the one place where the kernel turns sdk sentinel errors into HTTP status
// codes, and it records who is at fault: the client, the kernel or a plugin.
package problem
