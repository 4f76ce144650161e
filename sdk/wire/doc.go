// Package wire holds what both ends of the plugin protocol share: the
// go-plugin handshake, the plugin set, and route path templates. Plugin
// authors do not need it; sdk.Serve and the kernel use it.
package wire
