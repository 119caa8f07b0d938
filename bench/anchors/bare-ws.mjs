// Anchor for agent fan-in: a bare `ws` server (the library rcflow's API uses) holding idle
// connections that send a presence-sized heartbeat every 30 s; the server parses each frame and
// keeps one small object per connection. Memory per connection here is the floor for Node + ws.
//   node bench/anchors/bare-ws.mjs server --port P             (prints "bare-ws listening on P")
//   node bench/anchors/bare-ws.mjs clients --port P --count N  (prints "clients ready: N")
import http from 'node:http';
import { parseArgs } from 'node:util';
import { WebSocket, WebSocketServer } from 'ws';

const { positionals, values: o } = parseArgs({
  allowPositionals: true,
  options: { port: { type: 'string' }, count: { type: 'string', default: '1000' }, heartbeat: { type: 'string', default: '30' } },
});
const presence = {
  agentVersion: '1.0.0',
  osFamily: 'windows',
  osBuild: '10.0.22631',
  fqdn: null,
  domainJoined: false,
  domain: null,
  loggedOnUser: 'user1',
  locked: false,
  localAdministrators: [],
  appliedSettingsHash: null,
};

if (positionals[0] === 'server') {
  const server = http.createServer((_q, res) => res.end());
  const wss = new WebSocketServer({ server, maxPayload: 64 * 1024 });
  const conns = new Map();
  let n = 0;
  wss.on('connection', (ws) => {
    const id = ++n;
    const conn = { id, ws, lastSeen: Date.now() };
    conns.set(id, conn);
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      conn.lastSeen = Date.now();
      if (m.type === 'hello') ws.send(JSON.stringify({ v: 1, type: 'welcome', heartbeatSeconds: Number(o.heartbeat) }));
    });
    ws.on('close', () => conns.delete(id));
  });
  server.listen(Number(o.port), '127.0.0.1', () => process.stdout.write(`bare-ws listening on ${o.port}\n`));
  process.on('SIGTERM', () => process.exit(0));
} else if (positionals[0] === 'clients') {
  const count = Number(o.count);
  let ready = 0;
  let next = 0;
  const open = () =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${o.port}/`);
      ws.once('error', reject);
      ws.once('open', () => ws.send(JSON.stringify({ v: 1, type: 'hello', presence })));
      ws.once('message', () => {
        setInterval(() => ws.send(JSON.stringify({ v: 1, type: 'heartbeat', presence })), Number(o.heartbeat) * 1000);
        resolve();
      });
    });
  await Promise.all(
    Array.from({ length: 50 }, async () => {
      while (next < count) {
        next++;
        await open();
        ready++;
      }
    }),
  );
  process.stdout.write(`clients ready: ${ready}\n`);
  process.on('SIGTERM', () => process.exit(0));
} else {
  process.stderr.write('usage: bare-ws.mjs server|clients --port P [--count N]\n');
  process.exit(64);
}
