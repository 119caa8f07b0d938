// Anchor: a bare BullMQ worker on the same Redis as rcflow, with rcflow's job options and worker
// concurrency, running no-op jobs.
//   drain:   enqueue N jobs first (not timed), then time one worker draining them → jobs/s
//   latency: add jobs at a steady rate → time from add() resolving to the worker starting the job
// Prints one JSON line on stdout.
//   node bench/anchors/bullmq.mjs drain   --redis URL --prefix P --jobs 100000 --concurrency 64
//   node bench/anchors/bullmq.mjs latency --redis URL --prefix P --rate 200 --seconds 10 --concurrency 64
import { parseArgs } from 'node:util';
import { Queue, Worker } from 'bullmq';

const { positionals, values: o } = parseArgs({
  allowPositionals: true,
  options: {
    redis: { type: 'string' },
    prefix: { type: 'string' },
    jobs: { type: 'string', default: '100000' },
    concurrency: { type: 'string', default: '64' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
  },
});
const mode = positionals[0];
const u = new URL(o.redis);
const connection = { host: u.hostname, port: Number(u.port || 6379), maxRetriesPerRequest: null };
// The same options rcflow gives every job (libs/jobs/src/jobs.ts defaultJobOptions, with its defaults).
const jobOpts = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1000 },
  removeOnComplete: { age: 3600 },
  removeOnFail: { age: 604800 },
};
const now = () => performance.timeOrigin + performance.now();
const name = `anchor-${mode}`;
const queue = new Queue(name, { connection, prefix: o.prefix, defaultJobOptions: jobOpts });

async function drain() {
  const n = Number(o.jobs);
  for (let i = 0; i < n; i += 1000) {
    await queue.addBulk(Array.from({ length: Math.min(1000, n - i) }, (_, j) => ({ name: 'noop', data: { i: i + j } })));
  }
  let done = 0;
  let t0 = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const worker = new Worker(name, async () => undefined, {
    connection,
    prefix: o.prefix,
    concurrency: Number(o.concurrency),
    autorun: false,
  });
  worker.on('completed', () => {
    if (++done === n) finish(now());
  });
  t0 = now();
  void worker.run();
  const t1 = await finished;
  await worker.close();
  return { mode, jobs: n, seconds: (t1 - t0) / 1000, jobsPerSecond: n / ((t1 - t0) / 1000) };
}

async function latency() {
  const rate = Number(o.rate);
  const seconds = Number(o.seconds);
  const addedAt = new Map();
  const startedAt = new Map();
  const worker = new Worker(
    name,
    async (job) => {
      startedAt.set(job.id, now());
    },
    { connection, prefix: o.prefix, concurrency: Number(o.concurrency) },
  );
  await worker.waitUntilReady();
  const t0 = now();
  const pending = [];
  for (let i = 0; i < rate * seconds; i++) {
    const wait = t0 + (i * 1000) / rate - now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    pending.push(queue.add('noop', { i }).then((job) => addedAt.set(job.id, now())));
  }
  await Promise.all(pending);
  await new Promise((r) => setTimeout(r, 500));
  await worker.close();
  // A job may start before add() resolves on this side: those count as 0.
  const s = [...addedAt]
    .filter(([id]) => startedAt.has(id))
    .map(([id, a]) => Math.max(0, startedAt.get(id) - a))
    .sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)];
  return { mode, rate, seconds, samples: s.length, p50: q(0.5), p95: q(0.95), p99: q(0.99) };
}

const result = mode === 'drain' ? await drain() : mode === 'latency' ? await latency() : null;
if (!result) {
  process.stderr.write('usage: bullmq.mjs drain|latency --redis URL --prefix P ...\n');
  process.exit(64);
}
await queue.obliterate({ force: true }).catch(() => undefined);
await queue.close();
process.stdout.write(`${JSON.stringify(result)}\n`);
process.exit(0);
