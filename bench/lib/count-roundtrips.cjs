// Preloaded into rcflow's processes by the profile run only (node --require), never by rcflow
// itself: counts PostgreSQL statements (node-postgres Client#query) and Redis commands (ioredis
// sendCommand; a BullMQ Lua script is one EVALSHA) and writes the counts to $BENCH_COUNT_FILE on
// exit. Statements are grouped by their first words so the table shows which ones recur.
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '../..');
const counts = { pg: {}, redis: {}, pgTotal: 0, redisTotal: 0 };
const bump = (m, k) => (m[k] = (m[k] ?? 0) + 1);

const pg = require(require.resolve('pg', { paths: [root] }));
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function patchedQuery(config, ...rest) {
  const text = typeof config === 'string' ? config : (config?.text ?? '');
  bump(counts.pg, text.replace(/\s+/g, ' ').trim().slice(0, 70));
  counts.pgTotal++;
  return query.call(this, config, ...rest);
};

const Redis = require(require.resolve('ioredis', { paths: [root] })).default;
const send = Redis.prototype.sendCommand;
Redis.prototype.sendCommand = function patchedSend(command, ...rest) {
  bump(counts.redis, command?.name ?? '?');
  counts.redisTotal++;
  return send.call(this, command, ...rest);
};

const dump = (file) => file && fs.writeFileSync(file, JSON.stringify(counts));
// SIGUSR2 marks the start of the measured interval; exit writes the totals.
process.on('SIGUSR2', () => dump(process.env.BENCH_COUNT_FILE && `${process.env.BENCH_COUNT_FILE}.start`));
process.on('exit', () => dump(process.env.BENCH_COUNT_FILE));
