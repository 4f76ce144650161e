#!/usr/bin/env node
'use strict';
// hello_node: an Edulure plugin in Node.js, written against the wire
// protocol (docs/protocol.md) with @grpc/grpc-js, without the Go SDK.
//
// It serves GET /api/v1/hello, which greets the caller and, to do so,
// calls the kernel back over the go-plugin broker: Host.GetTenantConfig for
// the institution's greeting and Host.Authorize for whether the caller may
// change it.
//
// lib/goplugin.js is the go-plugin part (handshake, AutoMTLS, broker,
// controller); this file is the plugin: its manifest and the Plugin
// service, in the kernel's lifecycle order.

const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const { serve, loadProto } = require('./lib/goplugin');
const { log } = require('./lib/log');

// One source of truth: the protocol's .proto in this repository.
const PROTO = path.join(__dirname, '..', '..', 'sdk', 'proto', 'plugin', 'v1', 'plugin.proto');
const pb = loadProto(PROTO).edulure.plugin.v1;

// The handshake of sdk/wire/handshake.go.
const COOKIE_KEY = 'EDULURE_PLUGIN';
const COOKIE_VALUE = 'b2d1c0a4-kernel-plugin-protocol';
const PROTOCOL_VERSIONS = [1];

const NAME = 'hello_node';
const VERSION = '0.1.0';
const HELLO_ROUTE = 'GET /api/v1/hello';
const DEFAULT_GREETING = 'hello from node';
const MAX_NAME = 40;

const json = (v) => Buffer.from(JSON.stringify(v));

const configSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    greeting: { type: 'string', minLength: 1, maxLength: 100, description: 'What the plugin says first.' },
  },
};

const helloSchema = {
  type: 'object',
  required: ['message', 'tenant', 'user', 'can_manage'],
  properties: {
    message: { type: 'string' },
    tenant: { type: 'string', format: 'uuid' },
    user: { type: 'string', format: 'uuid', nullable: true, description: 'Null for an API key.' },
    can_manage: { type: 'boolean', description: 'Whether the caller may change the greeting (asked of the kernel).' },
  },
};

// The manifest (message Manifest). Every field the kernel checks is here;
// bytes fields carry JSON.
const manifest = {
  name: NAME,
  version: VERSION,
  description: 'Says hello from Node.js, and asks the kernel what it should say.',
  min_protocol: 1,
  max_protocol: 1,
  routes: [{
    method: 'GET',
    path: '/api/v1/hello',
    permission: 'hello_node.greeting.read',
    summary: 'Greet the caller',
    query: ['name'],
    response_schema_json: json(helloSchema),
  }],
  permissions: [
    { name: 'hello_node.greeting.read', description: 'Be greeted', default_roles: ['admin', 'instructor', 'learner'] },
    { name: 'hello_node.greeting.manage', description: "Change the institution's greeting", default_roles: ['admin'] },
  ],
  config_schema_json: json(configSchema),
};

// PluginError is a handler's answer that is not a success: kind is one of
// the protocol's error kinds (invalid, not_found, conflict, ...).
class PluginError extends Error {
  constructor(kind, detail, fields = []) {
    super(detail);
    this.kind = kind;
    this.fields = fields;
  }
}

// Lifecycle state: GetManifest, then Configure, then requests.
const state = { manifestRead: false, configured: false, host: null, config: {} };

// call makes one Host call, bounded by the request's deadline.
function call(method, request, deadlineMs) {
  const deadline = deadlineMs > 0 ? new Date(deadlineMs) : new Date(Date.now() + 5000);
  return new Promise((resolve, reject) => {
    state.host[method](request, { deadline }, (err, out) => (err ? reject(err) : resolve(out)));
  });
}

// hello serves GET /api/v1/hello.
async function hello(req) {
  const p = req.principal;
  const name = (req.query.name && req.query.name.values[0]) || '';
  if (name.length > MAX_NAME) {
    throw new PluginError('invalid', `name: at most ${MAX_NAME} characters`, [{ field: 'name', message: `at most ${MAX_NAME} characters, got ${name.length}` }]);
  }
  // The institution's settings also arrive with the request
  // (tenant_config_json); this asks the kernel, to show a Host call.
  const settings = await call('GetTenantConfig', { tenant_id: p.tenant_id }, req.deadline_unix_ms);
  const config = settings.config_json.length > 0 ? JSON.parse(settings.config_json) : {};
  const greeting = config.greeting || DEFAULT_GREETING;
  const manage = await call('Authorize', {
    principal: p,
    permission: 'hello_node.greeting.manage',
    resource: { type: 'greeting', id: 'default', tenant_id: p.tenant_id },
  }, req.deadline_unix_ms);
  return {
    status: 200,
    body: {
      message: name ? `${greeting}, ${name}` : greeting,
      tenant: p.tenant_id,
      user: p.user_id || null,
      can_manage: manage.allowed,
    },
  };
}

const routes = { [HELLO_ROUTE]: hello };

// unary adapts an async function to a grpc-js unary handler; a thrown
// {code, details} becomes that gRPC status.
const unary = (fn) => (callObj, callback) => {
  Promise.resolve()
    .then(() => fn(callObj.request))
    .then((out) => callback(null, out), (err) => callback(err.code ? err : { code: grpc.status.INTERNAL, details: String(err.message || err) }));
};

const precondition = (details) => ({ code: grpc.status.FAILED_PRECONDITION, details });

// The Plugin service, in lifecycle order.
const pluginService = (broker) => ({
  // 1. GetManifest: no database, no Host (§11.1).
  GetManifest: unary(async (req) => {
    log.info('manifest requested', { protocol_version: req.protocol_version, kernel_version: req.kernel_version });
    state.manifestRead = true;
    return manifest;
  }),

  // 2. Configure: after the kernel provisioned the plugin's schema (§11.2;
  // no migrations here). Dial the Host service on the broker ID given (§9, §11.3).
  Configure: unary(async (req) => {
    if (!state.manifestRead) throw precondition('Configure before GetManifest');
    if (state.configured) throw precondition('the plugin is already configured');
    state.config = req.operator_config_json.length > 0 ? JSON.parse(req.operator_config_json) : {};
    if (req.host_broker_id !== 0) {
      try {
        state.host = await broker.dial(req.host_broker_id, pb.Host);
      } catch (err) {
        throw { code: grpc.status.UNAVAILABLE, details: `dialling the kernel's host services: ${err.message}` };
      }
    }
    state.configured = true;
    log.info('configured', { host_broker_id: req.host_broker_id, database: req.database_url !== '' });
    return {};
  }),

  // 3. HandleHTTP: one request the kernel authenticated and authorised (§11.4).
  HandleHTTP: unary(async (req) => {
    if (!state.configured) throw precondition('the plugin is not configured yet');
    const handler = routes[req.route];
    if (!handler) throw { code: grpc.status.NOT_FOUND, details: `no route ${req.route} in this plugin` };
    try {
      const out = await handler(req);
      return {
        status: out.status,
        headers: { 'Content-Type': { values: ['application/json'] } },
        body: json(out.body),
      };
    } catch (err) {
      if (err instanceof PluginError) {
        return { error: { kind: err.kind, detail: err.message, fields: err.fields } };
      }
      // The detail of an internal error stays in the log, under the request ID.
      log.error('handler failed', { route: req.route, request_id: req.request_id, tenant: req.principal && req.principal.tenant_id, plugin: NAME, error: err });
      return { error: { kind: 'internal', detail: 'the plugin failed to handle the request; its log has the details' } };
    }
  }),

  // Polled every 5 s; anything but "ok" three times running is a crash (§11.7).
  Health: unary(async () => (state.configured ? { status: 'ok' } : { status: 'starting', message: 'not configured yet' })),

  // HandleEvents and RunJob are left out: the manifest subscribes to no
  // event and declares no job, so the kernel never calls them (grpc-js
  // answers UNIMPLEMENTED if it did).
});

if (require.main === module) {
  if (process.argv[2] === 'manifest') {
    const decoded = JSON.parse(JSON.stringify(manifest, (k, v) => (k.endsWith('_json') ? JSON.parse(Buffer.from(v.data || v).toString()) : v)));
    process.stdout.write(JSON.stringify(decoded, null, 2) + '\n');
    process.exit(0);
  }
  serve({
    cookieKey: COOKIE_KEY,
    cookieValue: COOKIE_VALUE,
    versions: PROTOCOL_VERSIONS,
    register(server, { broker }) {
      server.addService(pb.Plugin.service, pluginService(broker));
    },
    async onShutdown() {
      if (state.host) state.host.close();
    },
  });
}

module.exports = { manifest };
