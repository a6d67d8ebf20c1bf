// Socket.IO 2 (Engine.IO 3, Socket.IO protocol 4) server and client on loopback,
// websocket transport only. Otherwise as socketio.js.
// Logs every Engine.IO packet each side sent and received, and every Socket.IO event,
// as JSON lines: node socketio.js LOG PORT
'use strict';
const fs = require('fs');
const http = require('http');
const ioServer = require('socket.io-v2');
const { Manager } = require('socket.io-client-v2');

const [logPath, port] = [process.argv[2], +process.argv[3] || 9106];
const out = fs.openSync(logPath, 'w');
const log = (o) => fs.writeSync(out, JSON.stringify(o) + '\n');
// Buffers as {"binary": base64} in logs.
const plain = (v) => JSON.parse(JSON.stringify(v, (k, x) =>
  x && x.type === 'Buffer' && Array.isArray(x.data) ? { binary: Buffer.from(x.data).toString('base64') } : x));
const data = (d) => (typeof d === 'string' || d === undefined ? d : { binary: Buffer.from(d).toString('base64') });
const hook = (peer, engine) => {
  engine.on('packetCreate', (p) => log({ peer, dir: 'sent', eio: p.type, data: data(p.data) }));
  engine.on('packet', (p) => log({ peer, dir: 'recv', eio: p.type, data: data(p.data) }));
};
const ev = (peer, dir, nsp, event, args) => log({ peer, dir, nsp, event, args: plain(args) });

const httpServer = http.createServer();
const io = ioServer(httpServer, { transports: ['websocket'], pingInterval: 400, pingTimeout: 2000 });
io.engine.on('connection', (sock) => hook('server', sock));
io.of('/').on('connection', (s) => {
  s.on('hello', (...args) => ev('server', 'recv', '/', 'hello', args));
});
io.of('/chat').on('connection', (s) => {
  s.on('message', (text, ack) => {
    ev('server', 'recv', '/chat', 'message', [text]);
    ev('server', 'sent', '/chat', 'ack', ['got ' + text]);
    ack('got ' + text);
    ev('server', 'sent', '/chat', 'news', [{ title: 'welcome', n: [1, 2] }]);
    s.emit('news', { title: 'welcome', n: [1, 2] });
  });
  s.on('upload', (name, buf, ack) => {
    ev('server', 'recv', '/chat', 'upload', [name, buf]);
    ev('server', 'sent', '/chat', 'ack', [buf.length]);
    ack(buf.length);
    const two = [Buffer.from('first'), Buffer.from([0, 1, 2, 255])];
    ev('server', 'sent', '/chat', 'blob', two);
    s.emit('blob', ...two);
  });
  s.on('bye', (...args) => ev('server', 'recv', '/chat', 'bye', args));
});

httpServer.listen(port, '127.0.0.1', () => {
  const m = new Manager(`http://127.0.0.1:${port}`, { transports: ['websocket'], reconnection: false });
  hook('client', m.engine || m.open() && m.engine);
  const root = m.socket('/');
  const chat = m.socket('/chat', { query: { token: 'abc' } });
  chat.on('news', (...a) => ev('client', 'recv', '/chat', 'news', a));
  chat.on('blob', (...a) => {
    ev('client', 'recv', '/chat', 'blob', a);
    // Let a few heartbeats pass, then say goodbye.
    setTimeout(() => {
      ev('client', 'sent', '/chat', 'bye', ['see you']);
      chat.emit('bye', 'see you');
      setTimeout(() => {
        chat.disconnect();
        root.disconnect();
        setTimeout(() => { io.close(); fs.closeSync(out); process.exit(0); }, 300);
      }, 200);
    }, 1000);
  });
  root.on('connect', () => {
    ev('client', 'sent', '/', 'hello', ['world', 42, { nested: [true, null] }]);
    root.emit('hello', 'world', 42, { nested: [true, null] });
  });
  chat.on('connect', () => {
    ev('client', 'sent', '/chat', 'message', ['hi, all !']);
    chat.emit('message', 'hi, all !', (reply) => {
      ev('client', 'recv', '/chat', 'ack', [reply]);
      const buf = Buffer.from('binary upload \u00ff', 'latin1');
      ev('client', 'sent', '/chat', 'upload', ['file.bin', buf]);
      chat.emit('upload', 'file.bin', buf, (n) => ev('client', 'recv', '/chat', 'ack', [n]));
    });
  });
});
