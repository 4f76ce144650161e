// Package sdk is the contract between the Edulure kernel and its plugins.
//
// Everything a plugin author needs lives here, in its own Go module, so that a
// plugin imports sdk/... and never kernel/.... This release carries the error
// vocabulary that the kernel and plugins share (errors.go); the plugin
// protocol, handshake and test harness are added by the plugin-runtime work.
package sdk
