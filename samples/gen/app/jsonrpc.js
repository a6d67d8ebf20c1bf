// JSON-RPC 2.0 over websocket (subprotocol "jsonrpc"): a json-rpc-2.0 server and client on
// ws, loopback. Logs every websocket message both sides sent and received, as JSON lines:
// node jsonrpc.js LOG PORT
'use strict';
const { WebSocketServer, WebSocket } = require('ws');
const { JSONRPCServer, JSONRPCClient, JSONRPCServerAndClient } = require('json-rpc-2.0');
const wslog = require('./wslog');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9104];
const L = wslog(logPath);

const server = new JSONRPCServer();
server.addMethod('subtract', ([a, b]) => a - b);
server.addMethod('echo', (p) => p);
server.addMethod('fail', () => { throw new Error('it failed'); });
const notified = [];
server.addMethod('update', (p) => { notified.push(p); });

const wss = new WebSocketServer({ port, host: '127.0.0.1', handleProtocols: (p) => (p.has('jsonrpc') ? 'jsonrpc' : false) });
wss.on('connection', (ws) => {
  L.hook('server', ws);
  ws.on('message', async (d) => {
    const res = await server.receiveJSON(d.toString());
    if (res) ws.send(JSON.stringify(res));
  });
});

async function main() {
  const ws = L.hook('client', new WebSocket(`ws://127.0.0.1:${port}/rpc`, ['jsonrpc']));
  await new Promise((r) => ws.on('open', r));
  const client = new JSONRPCClient((req) => { ws.send(JSON.stringify(req)); });
  ws.on('message', (d) => client.receive(JSON.parse(d.toString())));
  await client.request('subtract', [42, 23]);
  await client.request('echo', { text: 'hi, all !', n: [1, 2] });
  await client.request('fail', []).catch(() => {});
  await client.request('nope', {}).catch(() => {});
  client.notify('update', [1, 2, 3]);
  // A batch, written by hand as the spec's example (the library sends one at a time).
  const batch = [
    { jsonrpc: '2.0', method: 'subtract', params: [1, 2], id: 'b1' },
    { jsonrpc: '2.0', method: 'update', params: [7] },
    { jsonrpc: '2.0', method: 'echo', params: ['x'], id: 'b2' },
  ];
  const batchReply = new Promise((r) => ws.once('message', r));
  ws.send(JSON.stringify(batch));
  await batchReply;
  await new Promise((r) => setTimeout(r, 200));
  ws.close(1000, 'done');
  await new Promise((r) => setTimeout(r, 300));
  L.close();
  wss.close();
  process.exit(0);
}
main().catch((e) => { console.error(e); process.exit(1); });
