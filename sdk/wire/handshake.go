package wire

import (
	"context"

	"github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pluginv1 "github.com/edulure/edulure/sdk/proto/plugin/v1"
)

// Handshake is the go-plugin handshake. The magic cookie only tells a
// plugin binary that it was started by the kernel (and not by hand); it is
// not a security measure. The protocol version is negotiated through
// VersionedPlugins.
var Handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "EDULURE_PLUGIN",
	MagicCookieValue: "b2d1c0a4-kernel-plugin-protocol",
}

// PluginKey names the one plugin every Edulure plugin binary serves.
const PluginKey = "edulure"

// Versions lists the protocol versions this build speaks.
var Versions = []int{1}

// ServerPlugins is the plugin set a plugin binary serves.
func ServerPlugins(impl pluginv1.PluginServer, onBroker func(*plugin.GRPCBroker)) map[int]plugin.PluginSet {
	out := map[int]plugin.PluginSet{}
	for _, v := range Versions {
		out[v] = plugin.PluginSet{PluginKey: &GRPCPlugin{Impl: impl, OnBroker: onBroker}}
	}
	return out
}

// ClientPlugins is the plugin set the kernel dispenses from.
func ClientPlugins() map[int]plugin.PluginSet {
	out := map[int]plugin.PluginSet{}
	for _, v := range Versions {
		out[v] = plugin.PluginSet{PluginKey: &GRPCPlugin{}}
	}
	return out
}

// GRPCPlugin is the go-plugin glue for the Plugin service.
type GRPCPlugin struct {
	plugin.NetRPCUnsupportedPlugin
	Impl     pluginv1.PluginServer    // plugin side
	OnBroker func(*plugin.GRPCBroker) // plugin side: receives the broker
}

// GRPCServer registers the Plugin service (plugin side).
func (p *GRPCPlugin) GRPCServer(b *plugin.GRPCBroker, s *grpc.Server) error {
	pluginv1.RegisterPluginServer(s, p.Impl)
	if p.OnBroker != nil {
		p.OnBroker(b)
	}
	return nil
}

// GRPCClient returns a *Client (kernel side).
func (p *GRPCPlugin) GRPCClient(_ context.Context, b *plugin.GRPCBroker, cc *grpc.ClientConn) (any, error) {
	return &Client{PluginClient: pluginv1.NewPluginClient(cc), Broker: b}, nil
}

// Client is the kernel's handle on a plugin's Plugin service and broker.
type Client struct {
	pluginv1.PluginClient
	Broker *plugin.GRPCBroker
}
