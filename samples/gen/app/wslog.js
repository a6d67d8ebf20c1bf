// Logs every websocket message a ws peer sends and receives: {"peer", "dir", "text" | "base64"}.
'use strict';
const fs = require('fs');

module.exports = function wslog(logPath) {
  const out = fs.openSync(logPath, 'w');
  const log = (o) => fs.writeSync(out, JSON.stringify(o) + '\n');
  const body = (d, isBinary) => (isBinary ? { base64: Buffer.from(d).toString('base64') } : { text: d.toString() });
  return {
    log,
    close: () => fs.closeSync(out),
    // Wraps a ws WebSocket (either side) so that both directions are logged.
    hook(peer, ws) {
      const send = ws.send.bind(ws);
      ws.send = (d, opts, cb) => {
        const binary = typeof d !== 'string' && !(opts && opts.binary === false);
        log({ peer, dir: 'sent', ...body(d, binary) });
        return send(d, opts, cb);
      };
      ws.on('message', (d, isBinary) => log({ peer, dir: 'recv', ...body(d, isBinary) }));
      return ws;
    },
  };
};
