'use strict';
// The plugin's half of go-plugin's AutoMTLS: a fresh key pair and a
// self-signed X.509 certificate for it, made at every start. Node's crypto
// makes keys and signatures but not certificates, so the certificate's DER
// is put together here; it has what go-plugin's own generateCert (mtls.go)
// puts in one, which is what Go's crypto/tls checks on the kernel's side:
//
//   - subject and issuer CN=localhost, SAN DNS:localhost (the kernel
//     verifies the name "localhost");
//   - extended key usage serverAuth and clientAuth (the same certificate
//     serves the plugin's server and dials the kernel's broker services);
//   - basic constraints CA:TRUE and key usage digitalSignature,
//     keyEncipherment, keyAgreement, keyCertSign, as go-plugin's;
//   - valid from 30 s ago for 30 years (the process's lifetime, really).
//
// go-plugin uses ECDSA P-521; any key Go's crypto/tls accepts works. This
// uses ECDSA P-256 with SHA-256.

const crypto = require('node:crypto');

// tlv encodes one DER value.
function tlv(tag, ...parts) {
  const body = Buffer.concat(parts);
  let len;
  if (body.length < 0x80) {
    len = Buffer.from([body.length]);
  } else {
    const bytes = [];
    for (let n = body.length; n > 0; n >>= 8) bytes.unshift(n & 0xff);
    len = Buffer.from([0x80 | bytes.length, ...bytes]);
  }
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

const seq = (...parts) => tlv(0x30, ...parts);
const set = (...parts) => tlv(0x31, ...parts);
const octets = (buf) => tlv(0x04, buf);
const utf8 = (s) => tlv(0x0c, Buffer.from(s, 'utf8'));
const bool = (b) => tlv(0x01, Buffer.from([b ? 0xff : 0x00]));
const bits = (buf, unused = 0) => tlv(0x03, Buffer.from([unused]), buf);

function oid(dotted) {
  const arcs = dotted.split('.').map(Number);
  const out = [40 * arcs[0] + arcs[1]];
  for (const arc of arcs.slice(2)) {
    const b = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) b.unshift(0x80 | (n & 0x7f));
    out.push(...b);
  }
  return tlv(0x06, Buffer.from(out));
}

// time is UTCTime until 2049 and GeneralizedTime after, as RFC 5280 asks.
function time(d) {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14) + 'Z'; // YYYYMMDDHHMMSSZ
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2))) : tlv(0x18, Buffer.from(iso));
}

function extension(id, critical, value) {
  return critical ? seq(oid(id), bool(true), octets(value)) : seq(oid(id), octets(value));
}

// selfSigned returns {certPEM, keyPEM, der}: der is the certificate's DER,
// which goes (base64) into the handshake line.
function selfSigned() {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const serial = crypto.randomBytes(16);
  serial[0] = (serial[0] & 0x7f) | 0x01; // positive, and no leading zero byte
  const now = Date.now();
  const ecdsaWithSHA256 = seq(oid('1.2.840.10045.4.3.2'));
  const name = seq(
    set(seq(oid('2.5.4.10'), utf8('Edulure plugin'))), // O
    set(seq(oid('2.5.4.3'), utf8('localhost'))), // CN
  );
  const tbs = seq(
    tlv(0xa0, tlv(0x02, Buffer.from([2]))), // [0] version: v3
    tlv(0x02, serial),
    ecdsaWithSHA256,
    name, // issuer: itself
    seq(time(new Date(now - 30e3)), time(new Date(now + 30 * 365.25 * 24 * 3600e3))),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, seq( // [3] extensions
      // digitalSignature, keyEncipherment, keyAgreement, keyCertSign: bits 0, 2, 4, 5.
      extension('2.5.29.15', true, bits(Buffer.from([0xac]), 2)),
      extension('2.5.29.37', false, seq(oid('1.3.6.1.5.5.7.3.2'), oid('1.3.6.1.5.5.7.3.1'))),
      extension('2.5.29.19', true, seq(bool(true))),
      extension('2.5.29.17', false, seq(tlv(0x82, Buffer.from('localhost')))), // dNSName
    )),
  );
  const signature = crypto.sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, ecdsaWithSHA256, bits(signature));
  const cert = new crypto.X509Certificate(der); // parses it back: a malformed DER fails here, not in the kernel
  if (!cert.verify(publicKey) || !cert.checkHost('localhost')) {
    throw new Error('the generated certificate does not verify');
  }
  return { certPEM: cert.toString(), keyPEM: privateKey.export({ type: 'pkcs8', format: 'pem' }), der };
}

module.exports = { selfSigned };
