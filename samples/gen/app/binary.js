// MessagePack (@msgpack/msgpack) and CBOR (cbor-x) payloads in binary websocket messages,
// with no subprotocol: a ws echo server and a ws client on loopback. Logs every websocket
// message both sides sent and received (wslog.js), and each value the client encoded
// ({"peer": "client", "format", "value", "index"}), as JSON lines: node binary.js LOG PORT
'use strict';
const { WebSocketServer, WebSocket } = require('ws');
const msgpack = require('@msgpack/msgpack');
const cbor = require('cbor-x');
const wslog = require('./wslog');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9107];
const L = wslog(logPath);

// JSON-compatible values (the reading must be their JSON), then a few that are not.
const VALUES = [
  { type: 'message', text: 'hi, all !', n: 1 },
  [1, 2, 3, 'four', { five: 5 }],
  { nested: { deep: [true, false, null, [1.5, -2, 4294967296]] }, 'é': 'ünïcödé 👋' },
  'just a string',
  { big: -9007199254740991, small: 0.1, neg: -1 },
  Array.from({ length: 20 }, (_, i) => ({ id: i, name: `item ${i}` })),
];
const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/binary' });
wss.on('connection', (ws) => {
  L.hook('server', ws);
  ws.on('message', (d, isBinary) => ws.send(d, { binary: isBinary }));
});

async function main() {
  const ws = L.hook('client', new WebSocket(`ws://127.0.0.1:${port}/binary`));
  await new Promise((r) => ws.on('open', r));
  const echo = () => new Promise((r) => ws.once('message', r));
  let index = 0;
  for (const [format, encode] of [['msgpack', (v) => msgpack.encode(v)], ['cbor', (v) => cbor.encode(v)]]) {
    for (const value of VALUES) {
      L.log({ peer: 'client', format, index: index++, value });
      const e = echo();
      ws.send(Buffer.from(encode(value)));
      await e;
    }
  }
  // Not JSON: raw bytes, a date (MessagePack timestamp extension / CBOR tag 1).
  for (const [format, encode] of [['msgpack', (v) => msgpack.encode(v)], ['cbor', (v) => cbor.encode(v)]]) {
    L.log({ peer: 'client', format, index: index++, bytes: 'AAEC/w==', date: 1700000000000 });
    const e = echo();
    ws.send(Buffer.from(encode({ bytes: new Uint8Array([0, 1, 2, 255]), date: new Date(1700000000000) })));
    await e;
  }
  ws.close(1000, 'done');
  await new Promise((r) => setTimeout(r, 300));
  L.close();
  wss.close();
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
