// Machine probe: what one loopback round trip costs here, the unit every rcflow step pays many
// times (PostgreSQL queries, Redis commands, agent frames).
//   tcp: a Node client and server in this process ping-pong 64-byte messages over 127.0.0.1,
//        one at a time on 16 connections → round trips/s and CPU µs per round trip (both ends).
//   tcpCrossProcess: the same with the echo server in a child process (as between rcflow's
//        processes, PostgreSQL and Redis: every message wakes another process) → client CPU µs
//        and server CPU µs per round trip.
//   pg:  SELECT $1::int (extended protocol, as rcflow's queries) on 16 pooled connections
//        (node-postgres) → queries/s, this process's CPU µs per query and the backends' CPU µs.
//   node bench/anchors/roundtrip.mjs --seconds 5 --pg postgres://postgres@127.0.0.1:5432/postgres
import { spawn } from 'node:child_process';
import net from 'node:net';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { cpuSecondsOfPids } from '../lib/proc.mjs';

const { values: o } = parseArgs({
  options: { seconds: { type: 'string', default: '5' }, pg: { type: 'string' }, conns: { type: 'string', default: '16' } },
});
const seconds = Number(o.seconds);
const conns = Number(o.conns);
const now = () => performance.now();

async function measure(fn) {
  const c0 = process.cpuUsage();
  const t0 = now();
  const n = await fn(t0 + seconds * 1000);
  const el = (now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return {
    perSecond: Math.round(n / el),
    cpuMicrosPerOp: Math.round(((c.user + c.system) / n) * 10) / 10,
    cpuCores: Math.round(((c.user + c.system) / 1e6 / el) * 100) / 100,
  };
}

async function tcp(port = null) {
  let server = null;
  if (port === null) {
    server = net.createServer((s) => s.on('data', (d) => s.write(d)));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    port = server.address().port;
  }
  const msg = Buffer.alloc(64, 1);
  const r = await measure(async (end) => {
    let n = 0;
    await Promise.all(
      Array.from(
        { length: conns },
        () =>
          new Promise((resolve) => {
            const s = net.connect(port, '127.0.0.1', () => s.write(msg));
            s.setNoDelay(true);
            s.on('data', () => {
              n++;
              if (now() < end) s.write(msg);
              else s.end(resolve);
            });
          }),
      ),
    );
    return n;
  });
  server?.close();
  return r;
}

async function tcpCrossProcess() {
  const echo = spawn(
    process.execPath,
    [
      '-e',
      `const s = require('node:net').createServer((c) => c.on('data', (d) => c.write(d)));
    s.listen(0, '127.0.0.1', () => console.log(s.address().port));`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const port = Number(await new Promise((r) => echo.stdout.once('data', (d) => r(String(d).trim()))));
  const s0 = cpuSecondsOfPids([echo.pid]);
  const r = await tcp(port);
  const n = r.perSecond * seconds;
  r.serverCpuMicrosPerOp = Math.round((((cpuSecondsOfPids([echo.pid]) - s0) * 1e6) / n) * 10) / 10;
  echo.kill();
  return r;
}

async function pgSelect() {
  const name = `bench-roundtrip-${process.pid}`;
  const pool = new pg.Pool({ connectionString: o.pg, max: conns, application_name: name });
  const clients = await Promise.all(Array.from({ length: conns }, () => pool.connect()));
  clients.forEach((c) => c.release());
  const pids = (await pool.query('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [name])).rows.map((r) => r.pid);
  const b0 = cpuSecondsOfPids(pids);
  let n = 0;
  const r = await measure(async (end) => {
    await Promise.all(
      Array.from({ length: conns }, async () => {
        while (now() < end) {
          await pool.query('SELECT $1::int AS x', [n]);
          n++;
        }
      }),
    );
    return n;
  });
  r.backendCpuMicrosPerOp = Math.round(((cpuSecondsOfPids(pids) - b0) * 1e6) / n);
  await pool.end();
  return r;
}

const out = { tcp: await tcp(), tcpCrossProcess: await tcpCrossProcess() };
if (o.pg) out.pgSelectParam = await pgSelect();
process.stdout.write(`${JSON.stringify(out)}\n`);
