package supervisor

import pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"

// HostFor is the Host service the supervisor serves to the named plugin,
// for tests that call it without a plugin process.
func HostFor(s *Supervisor, plugin string) pluginv1.HostServer {
	return &hostServer{s: s, plugin: plugin}
}

// HostWithCapabilities is HostFor a plugin whose manifest declares caps.
func HostWithCapabilities(s *Supervisor, plugin string, caps ...string) pluginv1.HostServer {
	h := &hostServer{s: s, plugin: plugin}
	h.Service.Capabilities = caps
	return h
}
