#!/usr/bin/env node
// Node `ws` peers used to record wsdump sample captures.
//
//   node nodews.js server SCENARIO PORT LOGFILE READYFILE
//   node nodews.js client SCENARIO PORT LOGFILE
//
// Logging (same JSON-lines format as pyws.py, see merge.py):
//  - sends: every frame handed to ws's Sender (Sender.prototype.send / ping /
//    pong / close are wrapped), so fragments, the automatic pong and the
//    close-frame echo are logged too; rsv1 = whether ws compresses the message
//    (Sender#_compress, decided on the first fragment);
//  - receives: what ws delivers to the application: 'message' (assembled
//    message; rsv1 read from the Receiver's per-message compressed flag),
//    'ping', 'pong', and the close frame's code/reason.
// The server serves exactly one connection, echoes every data message back
// unfragmented, and exits.
//
// wss: with WSDUMP_TLS_CERT and WSDUMP_TLS_KEY set the server speaks TLS (TLS 1.2 only,
// cipher WSDUMP_TLS_CIPHER, when that is set) and the client connects with wss://; run
// the client with `node --tls-keylog=FILE` for its NSS key log.
'use strict';
const fs = require('fs');
const path = require('path');
const WS = require(path.join(__dirname, 'node_modules/ws'));
const Sender = require(path.join(__dirname, 'node_modules/ws/lib/sender'));

const [role, scenario, portStr, logFile, readyFile] = process.argv.slice(2);
const port = Number(portStr);
const log = fs.openSync(logFile, 'w');
const now = () => process.hrtime.bigint().toString(); // CLOCK_MONOTONIC, same clock as Python's time.monotonic_ns()

const SCEN = {
  'node-fragmented': { perMessageDeflate: false },
  'sll2-any': {
    server: { perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 0 } },
    client: { perMessageDeflate: { clientNoContextTakeover: true, serverNoContextTakeover: true, threshold: 0 } },
  },
};
// The wss samples run the plain scenarios inside TLS.
const SAME_AS = { 'wss-node-gcm': 'sll2-any', 'wss-node-chacha': 'node-fragmented' };
const TLS_CERT = process.env.WSDUMP_TLS_CERT;
const TLS_KEY = process.env.WSDUMP_TLS_KEY;
const TLS_CIPHER = process.env.WSDUMP_TLS_CIPHER;

function toBuf(data) {
  if (data === undefined || data === null) return Buffer.alloc(0);
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (typeof data === 'number') return Buffer.from(String(data));
  return Buffer.from(data.buffer ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data);
}

// Each Sender belongs to one connection; the ws object registers itself here.
function senderConn(sender) { return sender._wsdumpConn; }

function write(rec) {
  fs.writeSync(log, JSON.stringify(Object.assign({ peer: role }, rec)) + '\n');
}

function logFrame(conn, ev, opcode, fin, rsv1, buf) {
  write({ ev, t: now(), client: conn.client, server: conn.server, opcode, fin, rsv1, data: buf.toString('base64') });
}

const origSend = Sender.prototype.send;
Sender.prototype.send = function (data, options, cb) {
  const first = this._firstFragment;
  const buf = toBuf(data);
  origSend.call(this, data, options, cb);
  const opcode = first ? (options.binary ? 2 : 1) : 0;
  // rsv1 is set on the first frame only, but _compress holds for the message
  logFrame(senderConn(this), 'send', opcode, !!options.fin, first ? !!this._compress : false, buf);
};
const origPing = Sender.prototype.ping;
Sender.prototype.ping = function (data, mask, cb) {
  origPing.call(this, data, mask, cb);
  logFrame(senderConn(this), 'send', 9, true, false, toBuf(data));
};
const origPong = Sender.prototype.pong;
Sender.prototype.pong = function (data, mask, cb) {
  origPong.call(this, data, mask, cb);
  logFrame(senderConn(this), 'send', 10, true, false, toBuf(data));
};
const origClose = Sender.prototype.close;
Sender.prototype.close = function (code, data, mask, cb) {
  origClose.call(this, code, data, mask, cb);
  let buf = Buffer.alloc(0);
  if (code !== undefined) {
    const r = toBuf(data);
    buf = Buffer.alloc(2 + r.length);
    buf.writeUInt16BE(code, 0);
    r.copy(buf, 2);
  }
  logFrame(senderConn(this), 'send', 8, true, false, buf);
};

function fmt(addr, p) { return (addr.includes(':') ? `[${addr}]` : addr) + ':' + p; }

// Attach logging to an open ws; returns an async "inbox" for the scenario code.
function instrument(ws, conn) {
  ws._sender._wsdumpConn = conn;
  const queue = [];
  let waiter = null;
  const push = (ev) => { if (waiter) { const w = waiter; waiter = null; w(ev); } else queue.push(ev); };
  ws.on('message', (data, isBinary) => {
    const buf = Array.isArray(data) ? Buffer.concat(data) : toBuf(data);
    logFrame(conn, 'recv', isBinary ? 2 : 1, true, !!ws._receiver._compressed, buf);
    push({ kind: 'message', data: buf, isBinary });
  });
  ws.on('ping', (data) => { logFrame(conn, 'recv', 9, true, false, data); push({ kind: 'ping', data }); });
  ws.on('pong', (data) => { logFrame(conn, 'recv', 10, true, false, data); push({ kind: 'pong', data }); });
  ws._receiver.on('conclude', (code, reason) => {
    // 'conclude' is emitted for the received close frame (code 1005 = no body)
    let buf = Buffer.alloc(0);
    if (code !== 1005) { buf = Buffer.alloc(2 + reason.length); buf.writeUInt16BE(code, 0); reason.copy(buf, 2); }
    logFrame(conn, 'recv', 8, true, false, buf);
    push({ kind: 'close', code, reason: reason.toString() });
  });
  return {
    next: () => new Promise((res) => { if (queue.length) res(queue.shift()); else waiter = res; }),
  };
}

async function expect(inbox, kind, data) {
  const ev = await inbox.next();
  if (ev.kind !== kind) throw new Error(`expected ${kind}, got ${ev.kind}`);
  if (data !== undefined && !toBuf(data).equals(ev.data)) throw new Error(`${kind}: payload mismatch`);
  return ev;
}

function bytes(n, seed) {
  // deterministic pseudo-random bytes (xorshift32)
  let x = seed >>> 0 || 1;
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; b[i] = x & 0xff; }
  return b;
}

function textOf(n, seed) {
  // ASCII text of exactly n bytes
  const words = 'lorem ipsum dolor sit amet websocket frame length boundary test payload'.split(' ');
  let s = '';
  let x = seed;
  while (s.length < n) { x = (x * 1103515245 + 12345) & 0x7fffffff; s += words[x % words.length] + ' '; }
  return s.slice(0, n);
}

async function clientNodeFragmented(ws, inbox) {
  // fragmented text message, with a ping (and its pong) between fragments
  ws.send('Hello, ', { fin: false });
  ws.ping('between-fragments');
  await expect(inbox, 'pong', 'between-fragments');
  ws.send('fragmented ', { fin: false });
  ws.send('world! ✓', { fin: true });
  await expect(inbox, 'message', 'Hello, fragmented world! ✓');
  // fragmented binary message (3 fragments)
  const b1 = bytes(100, 1), b2 = bytes(200, 2), b3 = bytes(50, 3);
  ws.send(b1, { fin: false, binary: true });
  ws.send(b2, { fin: false, binary: true });
  ws.send(b3, { fin: true, binary: true });
  await expect(inbox, 'message', Buffer.concat([b1, b2, b3]));
  // pings with payload in both directions
  ws.ping(Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
  await expect(inbox, 'pong', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0x01]));
  ws.send('please ping me');
  await expect(inbox, 'ping', 'server-ping-payload');
  await expect(inbox, 'message', 'please ping me');
  // an empty ping
  ws.ping();
  await expect(inbox, 'pong', '');
  // frame-length boundaries: 7-bit max, first 16-bit, 16-bit max, first 64-bit
  for (const [n, bin] of [[125, false], [126, true], [65535, false], [65536, true]]) {
    const m = bin ? bytes(n, n) : textOf(n, n);
    ws.send(m);
    await expect(inbox, 'message', m);
  }
  ws.close(4000, 'done');
  await expect(inbox, 'close');
}

async function clientSll2Any(ws, inbox) {
  for (const m of ['compressed without context takeover', 'compressed without context takeover',
    JSON.stringify({ type: 'say', content: 'every message is compressed on its own' })]) {
    ws.send(m);
    await expect(inbox, 'message', m);
  }
  const b = Buffer.concat([bytes(500, 7), Buffer.alloc(1500, 0x41)]);
  ws.send(b);
  await expect(inbox, 'message', b);
  // a compressed message sent in two fragments (RSV1 on the first only)
  ws.send('first half of a compressed fragmented message, ', { fin: false });
  ws.send('second half of a compressed fragmented message.', { fin: true });
  await expect(inbox, 'message', 'first half of a compressed fragmented message, second half of a compressed fragmented message.');
  ws.send('tiny');
  await expect(inbox, 'message', 'tiny');
  ws.close(1001, 'going away');
  await expect(inbox, 'close');
}

const CLIENTS = {
  'node-fragmented': clientNodeFragmented, 'sll2-any': clientSll2Any,
  'wss-node-gcm': clientSll2Any, 'wss-node-chacha': clientNodeFragmented,
};

function opts(side) {
  const s = SCEN[SAME_AS[scenario] || scenario];
  return (s[side] || s);
}

if (role === 'server') {
  let wss;
  const ready = () => fs.writeFileSync(readyFile, 'ready\n');
  if (TLS_CERT) {
    const tlsOpts = { cert: fs.readFileSync(TLS_CERT), key: fs.readFileSync(TLS_KEY) };
    if (TLS_CIPHER) Object.assign(tlsOpts, { maxVersion: 'TLSv1.2', ciphers: TLS_CIPHER });
    const server = require('https').createServer(tlsOpts);
    wss = new WS.WebSocketServer(Object.assign({ server }, opts('server')));
    server.listen(port, '127.0.0.1', ready);
    wss.on('close', () => server.close());
  } else {
    wss = new WS.WebSocketServer(Object.assign({ host: '127.0.0.1', port }, opts('server')), ready);
  }
  wss.on('connection', (ws, req) => {
    const conn = { client: fmt(req.socket.remoteAddress, req.socket.remotePort), server: fmt(req.socket.localAddress, req.socket.localPort) };
    const inbox = instrument(ws, conn);
    (async () => {
      for (;;) {
        const ev = await inbox.next();
        if (ev.kind === 'close') break;
        if (ev.kind !== 'message') continue;
        if (!ev.isBinary && ev.data.toString() === 'please ping me') {
          ws.ping('server-ping-payload');
          await expect(inbox, 'pong', 'server-ping-payload');
        }
        ws.send(ev.data, { binary: ev.isBinary }); // echo, unfragmented
      }
    })().catch((e) => { console.error(e); process.exit(1); });
    ws.on('close', () => { wss.close(); setTimeout(() => process.exit(0), 200); });
  });
} else {
  const url = `${TLS_CERT ? 'wss' : 'ws'}://127.0.0.1:${port}/${scenario}`;
  const tlsOpts = TLS_CERT ? { rejectUnauthorized: false, servername: 'localhost' } : {};
  const ws = new WS.WebSocket(url, Object.assign(tlsOpts, opts('client')));
  let inbox;
  ws.on('open', () => {
    const conn = { client: fmt(ws._socket.localAddress, ws._socket.localPort), server: fmt(ws._socket.remoteAddress, ws._socket.remotePort) };
    inbox = instrument(ws, conn);
    CLIENTS[scenario](ws, inbox).catch((e) => { console.error(e); process.exit(1); });
  });
  ws.on('close', () => setTimeout(() => process.exit(0), 100));
  ws.on('error', (e) => { console.error(e); process.exit(1); });
}
