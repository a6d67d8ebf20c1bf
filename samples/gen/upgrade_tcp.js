// A server that upgrades HTTP to a raw byte stream the way Docker's API does for `attach`
// (POST with `Upgrade: tcp`, answered `101 UPGRADED`), on Node's own HTTP stack: the 101 is
// written on the hijacked socket, as Docker's Go server does, then every byte is echoed.
//   node upgrade_tcp.js PORT READYFILE
const http = require('http');
const fs = require('fs');
const [port, ready] = process.argv.slice(2);
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
  res.end('OK');
});
server.on('upgrade', (req, socket, head) => {
  if ((req.headers.upgrade || '').toLowerCase() !== 'tcp') {
    socket.end('HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  socket.write('HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n' +
    'Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n');
  if (head.length) socket.write(head);
  socket.on('data', (d) => socket.write(d));
  socket.on('error', () => {});
});
server.listen(Number(port), '127.0.0.1', () => fs.writeFileSync(ready, 'ready\n'));
