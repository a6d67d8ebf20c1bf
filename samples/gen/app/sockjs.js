// SockJS on loopback: a sockjs-node 0.3.24 echo server and a sockjs-client 1.6.1 client,
// websocket transport only. Logs every SockJS message each side sent and received (the
// application's messages, not the frames), the open and the close, as JSON lines:
// node sockjs.js LOG PORT
'use strict';
const fs = require('fs');
const http = require('http');
const sockjs = require('sockjs');
const SockJS = require('sockjs-client');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9105];
const out = fs.openSync(logPath, 'w');
const log = (o) => fs.writeSync(out, JSON.stringify(o) + '\n');

// A STOMP frame carried as a SockJS message, echoed back as any other.
const STOMP = 'SEND\ndestination:/queue/a\ncontent-type:text/plain\n\nhello queue a\0';
const MESSAGES = ['hello', 'hi, all !', '{"type":"json","n":[1,2]}', 'quotes " and \\ and \u00e9 \ud83d\udc4b', STOMP, 'bye'];

const echo = sockjs.createServer({ heartbeat_delay: 400, log: () => {} });
echo.on('connection', (conn) => {
  log({ peer: 'server', event: 'open', url: conn.url });
  conn.on('data', (m) => {
    log({ peer: 'server', dir: 'recv', text: m });
    if (m === 'bye') {
      log({ peer: 'server', event: 'close', code: 3000, reason: 'Go away!' });
      // Let a heartbeat pass first.
      setTimeout(() => conn.close(3000, 'Go away!'), 600);
      return;
    }
    log({ peer: 'server', dir: 'sent', text: m });
    conn.write(m);
  });
});
const server = http.createServer();
echo.installHandlers(server, { prefix: '/echo' });
server.listen(port, '127.0.0.1', () => {
  const sock = new SockJS(`http://127.0.0.1:${port}/echo`, null, { transports: ['websocket'] });
  let i = 0;
  const next = () => {
    const m = MESSAGES[i++];
    log({ peer: 'client', dir: 'sent', text: m });
    sock.send(m);
  };
  sock.onopen = () => { log({ peer: 'client', event: 'open' }); next(); };
  sock.onmessage = (e) => {
    log({ peer: 'client', dir: 'recv', text: e.data });
    next();
  };
  sock.onclose = (e) => {
    log({ peer: 'client', event: 'close', code: e.code, reason: e.reason });
    setTimeout(() => { server.close(); fs.closeSync(out); process.exit(0); }, 200);
  };
});
