'use strict';
// hashicorp/go-plugin's server side in gRPC mode, as the Edulure kernel
// (a go-plugin v1.8.0 client with AutoMTLS) expects it. docs/protocol.md
// describes each step; this file does them in order:
//
//   1. check the magic cookie (started by the kernel, not by hand) (§4);
//   2. pick the protocol version from PLUGIN_PROTOCOL_VERSIONS (§5);
//   3. AutoMTLS: trust only the kernel's certificate (PLUGIN_CLIENT_CERT)
//      and make our own (§6);
//   4. serve the application's service plus go-plugin's: grpc.health.v1,
//      plugin.GRPCBroker, plugin.GRPCController, plugin.GRPCStdio (§8, §9);
//   5. print the handshake line on stdout (§7);
//   6. exit when the kernel says Shutdown, or when the kernel is gone (§11.8).
//
// Nothing here is specific to Edulure's Plugin service: serve() takes the
// cookie, the versions and a function that registers the application's
// services.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const crypto = require('node:crypto');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { selfSigned } = require('./cert');
const { log } = require('./log');

// go-plugin's core protocol version: the first field of the handshake line.
const CORE_PROTOCOL_VERSION = 1;

// The health service name go-plugin's client asks about.
const HEALTH_SERVICE = 'plugin';

// Field names as in the .proto files (snake_case), int64 as JS numbers
// (milliseconds fit), enums as their names, default values filled in.
const LOADER_OPTIONS = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

// loadProto loads a .proto file into gRPC service constructors.
function loadProto(file) {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
}

const goPlugin = loadProto(path.join(__dirname, '..', 'proto', 'go_plugin.proto')).plugin;
const health = loadProto(path.join(__dirname, '..', 'proto', 'health.proto')).grpc.health.v1;

// negotiate picks the newest version both sides speak. Like go-plugin, it
// falls back to its oldest one when there is none: the kernel then refuses
// the plugin with both lists in its message.
function negotiate(ours, offered) {
  const theirs = (offered || '').split(',').map((s) => Number.parseInt(s, 10)).filter(Number.isInteger);
  const common = ours.filter((v) => theirs.includes(v));
  return common.length > 0 ? Math.max(...common) : Math.min(...ours);
}

// Broker is the plugin's end of go-plugin's GRPCBroker: the kernel opens
// StartStream once, then sends a ConnInfo {service_id, network, address}
// for every service it serves to the plugin (the Host service among them).
class Broker {
  constructor(tls) {
    this.tls = tls; // the plugin's key pair and the kernel's certificate; null without AutoMTLS
    this.infos = new Map(); // service_id → ConnInfo
    this.waiting = new Map(); // service_id → [resolve]
  }

  // startStream is the GRPCBroker.StartStream handler.
  startStream(call) {
    call.on('data', (info) => {
      if (info.knock) return; // broker multiplexing: not asked for by the kernel
      log.trace('broker: service announced', { service_id: info.service_id, network: info.network, address: info.address });
      this.infos.set(info.service_id, info);
      for (const resolve of this.waiting.get(info.service_id) || []) resolve(info);
      this.waiting.delete(info.service_id);
    });
    call.on('end', () => call.end());
    call.on('error', () => {}); // the kernel closed it (shutdown)
  }

  connInfo(id, timeoutMs) {
    const known = this.infos.get(id);
    if (known) return Promise.resolve(known);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the kernel announced no broker service ${id} within ${timeoutMs} ms`)), timeoutMs);
      const list = this.waiting.get(id) || [];
      list.push((info) => { clearTimeout(timer); resolve(info); });
      this.waiting.set(id, list);
    });
  }

  // dial connects a client of Service (a constructor from loadProto) to
  // the broker service id, with the same mutual TLS as the main
  // connection: the plugin's certificate as the client certificate, the
  // kernel's as the only trusted root, server name "localhost".
  async dial(id, Service, timeoutMs = 5000) {
    const info = await this.connInfo(id, timeoutMs);
    const target = info.network === 'unix' ? `unix:${info.address}` : info.address;
    const creds = this.tls
      ? grpc.credentials.createSsl(Buffer.from(this.tls.kernelCertPEM), Buffer.from(this.tls.keyPEM), Buffer.from(this.tls.certPEM))
      : grpc.credentials.createInsecure();
    const client = new Service(target, creds, { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    await new Promise((resolve, reject) => client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
    return client;
  }
}

// serve runs the plugin's gRPC server and prints the handshake line.
// register(server, {version, broker}) adds the application's services; it
// is called once the version is known. onShutdown runs before the process
// exits on the kernel's request. serve returns nothing: the process lives
// until the kernel stops it.
function serve({ cookieKey, cookieValue, versions, register, onShutdown = async () => {} }) {
  if (process.env[cookieKey] !== cookieValue) {
    process.stderr.write('This is an Edulure plugin. List it in plugins.hcl and the kernel will start it.\n');
    process.exit(1);
  }
  // The names (not the values) of the variables the kernel passed: §3 of
  // docs/protocol.md says which to expect.
  log.debug('plugin starting', { pid: process.pid, node: process.version, env: Object.keys(process.env).sort() });
  const version = negotiate(versions, process.env.PLUGIN_PROTOCOL_VERSIONS);

  // AutoMTLS. Without PLUGIN_CLIENT_CERT, go-plugin serves without TLS and
  // leaves the handshake's certificate field empty; the kernel always sends one.
  let tls = null;
  let serverCreds = grpc.ServerCredentials.createInsecure();
  let certField = '';
  if (process.env.PLUGIN_CLIENT_CERT) {
    const own = selfSigned();
    tls = { ...own, kernelCertPEM: process.env.PLUGIN_CLIENT_CERT };
    serverCreds = grpc.ServerCredentials.createSsl(
      Buffer.from(tls.kernelCertPEM), // the only client certificate accepted
      [{ private_key: Buffer.from(own.keyPEM), cert_chain: Buffer.from(own.certPEM) }],
      true, // require and verify the client's certificate
    );
    // The DER, base64 with the standard alphabet and no padding (Go's
    // base64.RawStdEncoding): the line cannot hold a PEM's newlines.
    certField = own.der.toString('base64').replace(/=+$/, '');
  }

  const broker = new Broker(tls);
  const server = new grpc.Server();
  let stopping = false;
  const shutdown = async (why) => {
    if (stopping) return;
    stopping = true;
    log.debug('plugin stopping', { reason: why });
    try {
      await onShutdown();
    } catch (err) {
      log.error('shutdown hook failed', { error: err });
    }
    server.forceShutdown();
    process.exit(0);
  };

  server.addService(health.Health.service, {
    Check(call, callback) {
      if (call.request.service === '' || call.request.service === HEALTH_SERVICE) {
        callback(null, { status: 'SERVING' });
      } else {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service ${call.request.service}` });
      }
    },
    Watch(call) {
      call.write({ status: 'SERVING' });
    },
  });
  server.addService(goPlugin.GRPCBroker.service, { StartStream: (call) => broker.startStream(call) });
  server.addService(goPlugin.GRPCController.service, {
    Shutdown(_call, callback) {
      callback(null, {});
      setImmediate(() => shutdown('the kernel asked'));
    },
  });
  // Kept open and silent: this plugin's output goes to stderr, which the
  // kernel reads directly.
  server.addService(goPlugin.GRPCStdio.service, { StreamStdio() {} });
  register(server, { version, broker });

  // A Unix socket in the temporary directory, as go-plugin does on Unix
  // (127.0.0.1:<port> works too: the line's network field says which).
  const socket = path.join(os.tmpdir(), `plugin-${process.pid}-${crypto.randomBytes(4).toString('hex')}.sock`);
  process.on('exit', () => fs.rmSync(socket, { force: true }));
  server.bindAsync(`unix:${socket}`, serverCreds, (err) => {
    if (err) {
      log.error('cannot listen', { socket, error: err });
      process.exit(1);
    }
    // CORE-PROTOCOL-VERSION|APP-PROTOCOL-VERSION|NETWORK-TYPE|NETWORK-ADDR|PROTOCOL|SERVER-CERT
    process.stdout.write(`${CORE_PROTOCOL_VERSION}|${version}|unix|${socket}|grpc|${certField}\n`);
    log.debug('plugin address', { network: 'unix', address: socket, protocol_version: version });
  });

  // go-plugin plugins ignore SIGINT: a Ctrl-C in the kernel's terminal
  // reaches the whole process group, and the kernel stops its plugins itself.
  process.on('SIGINT', () => log.trace('plugin received interrupt signal, ignoring'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  // A kernel that died without stopping us (SIGKILL) leaves us re-parented.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) {
      log.warn('the kernel process is gone; exiting', { parent });
      process.exit(3);
    }
  }, 500).unref();
}

module.exports = { serve, loadProto, negotiate };
