// MQTT 3.1.1 over websocket on loopback: an aedes broker behind a ws server (subprotocol
// "mqtt") and an mqtt.js client. Logs every MQTT packet each side sent and received, as
// JSON lines: node mqtt.js LOG PORT
'use strict';
const fs = require('fs');
const http = require('http');
const { WebSocketServer, createWebSocketStream } = require('ws');
const { Aedes } = require('aedes');
const mqtt = require('mqtt');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9102];
const out = fs.openSync(logPath, 'w');
const log = (o) => fs.writeSync(out, JSON.stringify(o) + '\n');
// A packet as mqtt-packet parsed or generated it, payloads as text or base64.
const packet = (peer, dir, p) => {
  const o = { peer, dir, cmd: p.cmd };
  for (const k of ['messageId', 'topic', 'qos', 'retain', 'dup', 'clientId', 'keepalive', 'clean',
    'username', 'returnCode', 'sessionPresent', 'protocolVersion', 'granted', 'unsubscriptions']) {
    if (p[k] !== undefined && p[k] !== null) o[k] = p[k];
  }
  if (p.subscriptions) o.subscriptions = p.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos }));
  if (p.payload !== undefined && p.cmd === 'publish') {
    const b = Buffer.from(p.payload);
    o.len = b.length;
    if (b.length <= 1000) {
      const t = b.toString('utf8');
      if (Buffer.from(t, 'utf8').equals(b)) o.text = t; else o.base64 = b.toString('base64');
    }
  }
  log(o);
};

async function main() {
  // The CONNECT as the broker parsed it (mqtt.js emits no packetsend for it).
  const preConnect = (c, p, done) => { packet('broker', 'recv', p); done(null, true); };
  const broker = await Aedes.createBroker({ preConnect });
  const server = http.createServer();
  const wss = new WebSocketServer({ server, path: '/mqtt', handleProtocols: (p) => (p.has('mqtt') ? 'mqtt' : false) });
  wss.on('connection', (ws) => broker.handle(createWebSocketStream(ws)));
  broker.on('client', (c) => log({ peer: 'broker', event: 'client', clientId: c.id }));
  broker.on('publish', (p, c) => c && log({ peer: 'broker', event: 'publish', topic: p.topic, qos: p.qos, len: p.payload.length }));
  await new Promise((r) => server.listen(port, '127.0.0.1', r));

  const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, {
    protocolVersion: 4, clientId: 'wsdump-peer', username: 'alice', password: 'not-shown',
    keepalive: 1, clean: true, reconnectPeriod: 0,
  });
  client.on('packetsend', (p) => packet('client', 'sent', p));
  client.on('packetreceive', (p) => packet('client', 'recv', p));
  await new Promise((r) => client.on('connect', r));
  await client.subscribeAsync({ 'chat/#': { qos: 1 }, 'sensors/+': { qos: 0 }, 'big/#': { qos: 2 } });
  await client.publishAsync('chat/room1', 'hi, all !', { qos: 1 });
  await client.publishAsync('sensors/temp', '21.5', { qos: 0, retain: true });
  await client.publishAsync('chat/bin', Buffer.from([0, 1, 2, 0xfe, 0xff]), { qos: 2 });
  // Larger than a TCP segment, and one larger than wsdump's 64 KiB reassembly buffer.
  await client.publishAsync('big/50k', Buffer.alloc(50000, 'a'), { qos: 1 });
  await client.publishAsync('big/100k', Buffer.alloc(100000, 'b'), { qos: 0 });
  // Keep-alive 1 s: let PINGREQ / PINGRESP pass.
  await new Promise((r) => setTimeout(r, 2600));
  await client.unsubscribeAsync('sensors/+');
  await client.endAsync();
  await new Promise((r) => setTimeout(r, 300));
  broker.close();
  server.close();
  fs.closeSync(out);
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
