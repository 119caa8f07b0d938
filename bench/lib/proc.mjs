// Child processes for the benchmarks: spawn, wait for a log line, read resident memory, stop.
import { spawn } from 'node:child_process';
import { createWriteStream, readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { createServer } from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

/** Every process this run started, so a failure or ^C can stop them all (by pid). */
const started = new Set();

export class Proc {
  constructor(name, command, args, { env = {}, logFile, cwd } = {}) {
    this.name = name;
    this.lines = [];
    this.waiters = [];
    this.exited = null;
    this.child = spawn(command, args, {
      cwd,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    started.add(this);
    const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
    this.stdout = '';
    const onData = (which) => (chunk) => {
      const text = chunk.toString();
      if (which === 'stdout') this.stdout += text.length < 1e6 ? text : '';
      log?.write(text);
      for (const line of text.split('\n')) {
        if (!line) continue;
        this.lines.push(line);
        if (this.lines.length > 500) this.lines.shift();
        for (const w of [...this.waiters]) if (w.re.test(line)) w.resolve(line);
      }
    };
    this.child.stdout.on('data', onData('stdout'));
    this.child.stderr.on('data', onData('stderr'));
    this.done = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        this.exited = { code, signal };
        started.delete(this);
        log?.end();
        for (const w of this.waiters)
          w.reject(new Error(`${name} exited (${code ?? signal}) before printing ${w.re}; last lines:\n${this.tail()}`));
        resolve(this.exited);
      });
    });
  }

  get pid() {
    return this.child.pid;
  }

  tail(n = 15) {
    return this.lines.slice(-n).join('\n');
  }

  /** Resolves with the first line (from now on, or already printed) matching re. */
  waitFor(re, timeoutMs = 60_000) {
    const seen = this.lines.find((l) => re.test(l));
    if (seen) return Promise.resolve(seen);
    if (this.exited) return Promise.reject(new Error(`${this.name} already exited; last lines:\n${this.tail()}`));
    return new Promise((resolve, reject) => {
      const w = { re, resolve: (l) => (clear(), resolve(l)), reject: (e) => (clear(), reject(e)) };
      const timer = setTimeout(
        () => w.reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${this.tail()}`)),
        timeoutMs,
      );
      const clear = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((x) => x !== w);
      };
      this.waiters.push(w);
    });
  }

  /** Resident memory in bytes, from /proc/PID/status (VmRSS). */
  rss() {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${this.pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  }

  /** CPU time (user + system) in seconds so far, from /proc/PID/stat. */
  cpuSeconds() {
    const fields = readFileSync(`/proc/${this.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  }

  async stop(signal = 'SIGTERM', graceMs = 30_000) {
    if (this.exited) return this.exited;
    this.child.kill(signal);
    const t = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const r = await this.done;
    clearTimeout(t);
    return r;
  }
}

export async function stopAll(signal = 'SIGKILL') {
  await Promise.all([...started].map((p) => p.stop(signal, 5000)));
}

/** Runs a command to completion; rejects on a non-zero exit. */
export async function run(name, command, args, opts = {}) {
  const p = new Proc(name, command, args, opts);
  const r = await p.done;
  if (r.code !== 0) throw new Error(`${name} failed (${r.code ?? r.signal}):\n${p.tail(30)}`);
  return p.stdout;
}

/** Busy and total jiffies of the whole machine (/proc/stat), to compute CPU use over an interval. */
export function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = f[3] + f[4];
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/** CPU seconds (user + system) of the given processes; those gone are counted as 0. */
export function cpuSecondsOfPids(pids) {
  let sum = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
      sum += (Number(f[11]) + Number(f[12])) / 100;
    } catch {
      /* ended meanwhile */
    }
  }
  return sum;
}

/** CPU seconds of one process, or null when it is gone. */
function cpuSecondsOfPid(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(') ') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return null;
  }
}

/**
 * CPU of a changing set of processes (PostgreSQL backends come and go with the pools' idle
 * timeouts): listPids() is asked every second; a process first seen after the start counts from 0
 * (it started within the interval), one that ended counts up to its last reading.
 */
export function pidGroupSampler(listPids, everyMs = 1000) {
  const seen = new Map();
  let timer = null;
  const tick = async (initial) => {
    const pids = await listPids().catch(() => []);
    for (const pid of new Set([...pids, ...seen.keys()])) {
      const c = cpuSecondsOfPid(pid);
      if (c === null) continue;
      const e = seen.get(pid);
      if (e) e.last = c;
      else seen.set(pid, { first: initial ? c : 0, last: c });
    }
  };
  return {
    async start() {
      await tick(true);
      const loop = () => (timer = setTimeout(() => tick(false).then(loop), everyMs));
      loop();
    },
    async stop() {
      clearTimeout(timer);
      await tick(false);
      return [...seen.values()].reduce((a, e) => a + (e.last - e.first), 0);
    },
  };
}

/**
 * CPU use over an interval, in cores (1.0 = one core busy): of each named process, of each named
 * pidGroupSampler (e.g. the PostgreSQL backends serving this benchmark's database: the server is
 * shared with other people's tests), of this driver, and of the whole machine (machineCores);
 * `other` is what none of those account for (PostgreSQL's background processes, the kernel,
 * other people's work on the machine). Usage: const done = await cpuMeter(...); ...; await done().
 */
export async function cpuMeter(procs, groups = {}) {
  for (const g of Object.values(groups)) await g.start();
  const t0 = performance.now();
  const m0 = machineCpu();
  const p0 = Object.fromEntries(Object.entries(procs).map(([k, p]) => [k, p.cpuSeconds()]));
  const self0 = process.cpuUsage();
  return async () => {
    const secs = (performance.now() - t0) / 1000;
    const m1 = machineCpu();
    const r2 = (x) => Math.round(x * 100) / 100;
    const out = {};
    for (const [k, p] of Object.entries(procs)) {
      try {
        out[k] = r2((p.cpuSeconds() - p0[k]) / secs);
      } catch {
        out[k] = null;
      }
    }
    for (const [k, g] of Object.entries(groups)) out[k] = r2((await g.stop()) / secs);
    const self = process.cpuUsage(self0);
    out.benchDriver = r2((self.user + self.system) / 1e6 / secs);
    const cores = cpus().length;
    out.machineCores = r2(((m1.busy - m0.busy) / (m1.total - m0.total)) * cores);
    out.other = r2(
      out.machineCores -
        Object.values(out)
          .slice(0, -1)
          .reduce((a, b) => a + (b ?? 0), 0),
    );
    return out;
  };
}
