// Package conformance is a plugin that exercises the request contract the
// kernel's proxy and sdk/plugintest share (declared query parameters, body
// schemas, headers both ways, error kinds, statuses), for the conformance
// test that sends the same requests through both and expects the same
// answers. Its binary is cmd/.
package conformance
