// STOMP 1.2 over websocket: RabbitMQ's Web STOMP plugin (broker, started by record.sh) and
// a @stomp/stompjs 7.5.0 client on ws 8.23.0. Logs every websocket message the client sent
// and received (wslog.js), and every frame the client asked stompjs to send or stompjs
// handed it, as JSON lines: node stomp.js LOG PORT
'use strict';
const { WebSocket } = require('ws');
const { Client } = require('@stomp/stompjs');
const wslog = require('./wslog');

const [logPath, port] = [process.argv[2], +process.argv[3] || 15674];
const L = wslog(logPath);
const frame = (dir, command, headers, body) => L.log({ peer: 'client', dir, frame: { command, headers, body } });

const client = new Client({
  webSocketFactory: () => L.hook('client', new WebSocket(`ws://127.0.0.1:${port}/ws`, ['v12.stomp', 'v11.stomp', 'v10.stomp'])),
  connectHeaders: { login: 'guest', passcode: 'guest', host: '/' },
  heartbeatIncoming: 400,
  heartbeatOutgoing: 400,
  reconnectDelay: 0,
  debug: () => {},
});
const wait = (ms) => new Promise((r) => setTimeout(r, ms));

client.onConnect = async (f) => {
  frame('recv', f.command, f.headers, f.body);
  const got = [];
  const sub = client.subscribe('/queue/wsdump-test', (m) => {
    frame('recv', m.command, m.headers, m.isBinaryBody ? { base64: Buffer.from(m.binaryBody).toString('base64') } : m.body);
    got.push(m);
    m.ack();
    frame('sent', 'ACK', { id: m.headers.ack }, '');
  }, { id: 'sub-0', ack: 'client-individual' });
  frame('sent', 'SUBSCRIBE', { id: 'sub-0', destination: '/queue/wsdump-test', ack: 'client-individual' }, '');

  const receipt = new Promise((r) => client.watchForReceipt('r-1', (f) => { frame('recv', f.command, f.headers, f.body); r(); }));
  frame('sent', 'SEND', { destination: '/queue/wsdump-test', 'content-type': 'text/plain', receipt: 'r-1' }, 'hi, all !');
  client.publish({ destination: '/queue/wsdump-test', body: 'hi, all !', headers: { 'content-type': 'text/plain', receipt: 'r-1' } });
  await receipt;
  const bin = new Uint8Array([0, 1, 2, 0xfe, 0xff]);
  frame('sent', 'SEND', { destination: '/queue/wsdump-test', 'content-type': 'application/octet-stream' }, { base64: Buffer.from(bin).toString('base64') });
  client.publish({ destination: '/queue/wsdump-test', binaryBody: bin, headers: { 'content-type': 'application/octet-stream' } });
  const tx = client.begin('tx-1');
  frame('sent', 'BEGIN', { transaction: 'tx-1' }, '');
  frame('sent', 'SEND', { destination: '/queue/wsdump-test', transaction: 'tx-1', 'x-note': 'escape: colon\nnewline\\backslash' }, 'in a transaction');
  client.publish({ destination: '/queue/wsdump-test', body: 'in a transaction', headers: { transaction: 'tx-1', 'x-note': 'escape: colon\nnewline\\backslash' } });
  tx.commit();
  frame('sent', 'COMMIT', { transaction: 'tx-1' }, '');
  while (got.length < 3) await wait(50);
  // Heart-beats both ways.
  await wait(1500);
  sub.unsubscribe();
  frame('sent', 'UNSUBSCRIBE', { id: 'sub-0' }, '');
  frame('sent', 'DISCONNECT', {}, '');
  await client.deactivate();
  await wait(300);
  L.close();
  process.exit(0);
};
client.onStompError = (f) => { console.error('STOMP error', f.headers, f.body); process.exit(1); };
client.onWebSocketError = (e) => { console.error('websocket error', e.message); process.exit(1); };
frame('sent', 'CONNECT', { 'accept-version': '1.2,1.1,1.0', login: 'guest', host: '/' }, '');
client.activate();
