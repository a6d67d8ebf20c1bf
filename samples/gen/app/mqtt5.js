// MQTT 5.0 over websocket on loopback: the mqttools 0.50.0 broker (Python, MQTT 5 only,
// QoS 0 only, TCP;
// started by record.sh on 127.0.0.1:1884) behind a ws bridge that carries each TCP chunk in
// one binary websocket message (subprotocol "mqtt", path /mqtt), and an mqtt.js 5.16.0
// client speaking MQTT 5. Logs every MQTT packet the client sent and received, as JSON
// lines: node mqtt5.js LOG PORT [BROKER_PORT]
'use strict';
const fs = require('fs');
const net = require('net');
const { WebSocketServer } = require('ws');
const mqtt = require('mqtt');

const [logPath, port, brokerPort] = [process.argv[2], +process.argv[3] || 9109, +process.argv[4] || 1884];
const out = fs.openSync(logPath, 'w');
const log = (o) => fs.writeSync(out, JSON.stringify(o) + '\n');
const packet = (peer, dir, p) => {
  const o = { peer, dir, cmd: p.cmd };
  for (const k of ['messageId', 'topic', 'qos', 'retain', 'dup', 'clientId', 'keepalive', 'clean',
    'username', 'reasonCode', 'returnCode', 'sessionPresent', 'protocolVersion', 'granted', 'unsubscriptions',
    'properties']) {
    if (p[k] !== undefined && p[k] !== null) o[k] = p[k];
  }
  if (p.subscriptions) o.subscriptions = p.subscriptions.map((s) => ({ topic: s.topic, qos: s.qos }));
  if (p.payload !== undefined && p.cmd === 'publish') {
    const b = Buffer.from(p.payload);
    o.len = b.length;
    const t = b.toString('utf8');
    if (Buffer.from(t, 'utf8').equals(b)) o.text = t; else o.base64 = b.toString('base64');
  }
  if (o.properties) {
    // A copy: mqtt.js may still be using the packet.
    o.properties = { ...o.properties };
    if (o.properties.correlationData) o.properties.correlationData = Buffer.from(o.properties.correlationData).toString('base64');
  }
  log(o);
};

const wss = new WebSocketServer({ port, host: '127.0.0.1', path: '/mqtt', handleProtocols: (p) => (p.has('mqtt') ? 'mqtt' : false) });
wss.on('connection', (ws) => {
  const tcp = net.connect(brokerPort, '127.0.0.1');
  ws.on('message', (d) => tcp.write(d));
  tcp.on('data', (d) => ws.send(d, { binary: true }));
  ws.on('close', () => tcp.end());
  tcp.on('close', () => ws.close());
});

async function main() {
  const options = {
    protocolVersion: 5, clientId: 'wsdump-v5', keepalive: 1, clean: true, reconnectPeriod: 0,
    properties: { sessionExpiryInterval: 30, receiveMaximum: 20 },
  };
  // mqtt.js emits no packetsend for CONNECT: logged from the options it is given.
  log({ peer: 'client', dir: 'sent', cmd: 'connect', clientId: options.clientId, keepalive: 1, clean: true,
    protocolVersion: 5, properties: options.properties, from: 'options' });
  const client = mqtt.connect(`ws://127.0.0.1:${port}/mqtt`, options);
  client.on('packetsend', (p) => packet('client', 'sent', p));
  client.on('packetreceive', (p) => packet('client', 'recv', p));
  await new Promise((r, j) => { client.on('connect', r); client.on('error', j); });
  // mqttools grants QoS 0 only and no wildcards.
  await client.subscribeAsync({ 'v5/plain': { qos: 0 }, 'v5/props': { qos: 0 }, 'v5/bin': { qos: 0, nl: false, rap: true } });
  await client.publishAsync('v5/plain', 'hello v5', { qos: 0 });
  await client.publishAsync('v5/props', '{"t":21.5}', {
    qos: 0,
    properties: { contentType: 'application/json', messageExpiryInterval: 60, responseTopic: 'v5/reply', correlationData: Buffer.from('c1') },
  });
  await client.publishAsync('v5/bin', Buffer.from([0, 0xff, 1]), { qos: 0, properties: { payloadFormatIndicator: false } });
  await new Promise((r) => setTimeout(r, 2500));
  await client.unsubscribeAsync(['v5/plain', 'v5/props']);
  // Last, user properties, which mqttools 0.50.0 cannot parse: it answers with a DISCONNECT
  // whose reason code is 0x81 (malformed packet), and closes.
  const gone = new Promise((r) => client.once('disconnect', r));
  client.publish('v5/bin', 'with user properties', { qos: 0, properties: { userProperties: { unit: 'C', room: 'lab' } } });
  await gone;
  await new Promise((r) => setTimeout(r, 300));
  client.end(true);
  wss.close();
  fs.closeSync(out);
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
