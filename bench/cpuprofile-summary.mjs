// Summarises a V8 .cpuprofile (node --cpu-prof) by self time: the top functions, and the same
// time grouped by where the code lives (an npm package, rcflow's own code, Node internals, GC).
//   node bench/cpuprofile-summary.mjs FILE.cpuprofile [--top 25] [--json]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export function summarise(profile, top = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  // timeDeltas[i] is the time before sample i; attribute it to that sample's node.
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    self.set(profile.samples[i], (self.get(profile.samples[i]) ?? 0) + dt);
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const fns = new Map();
  const places = new Map();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id).callFrame;
    const file = url.replace(/^file:\/\//, '');
    const short = file.includes('node_modules/')
      ? file.slice(file.lastIndexOf('node_modules/') + 13)
      : file.replace(/^.*\/dist\//, 'dist/');
    const key = `${functionName || '(anonymous)'} ${short ? `${short}:${lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
    const place = placeOf(functionName, file);
    places.set(place, (places.get(place) ?? 0) + us);
  }
  // Shares of the samples when the thread was not idle (waiting in the event loop). Wall-clock
  // samples: time the process waited for a CPU inside a system call (e.g. writev on a saturated
  // machine) counts to that call.
  const busy = total - (places.get('(idle)') ?? 0);
  const rank = (m) =>
    [...m]
      .filter(([name]) => name !== '(idle)')
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: Math.round(us / 1000), share: Math.round((us / busy) * 1000) / 10 }));
  return {
    totalMs: Math.round(total / 1000),
    idleMs: Math.round((places.get('(idle)') ?? 0) / 1000),
    functions: rank(fns),
    places: rank(places),
  };
}

function placeOf(fn, file) {
  if (!file) return fn.startsWith('(') ? fn : '(native/V8)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (nm) return nm[1];
  if (file.startsWith('node:')) return 'node: internals';
  const d = /dist\/(apps\/[^/]+|libs\/[^/]+)/.exec(file);
  if (d) return `rcflow ${d[1]}`;
  return file;
}

export function format(s, title) {
  const lines = [
    `${title}: ${s.totalMs} ms sampled, ${s.idleMs} ms idle; shares below are of the ${s.totalMs - s.idleMs} ms not idle`,
    '  self time by place:',
  ];
  for (const p of s.places.slice(0, 12)) lines.push(`    ${String(p.share).padStart(5)}%  ${p.name}`);
  lines.push('  top functions by self time:');
  for (const f of s.functions) lines.push(`    ${String(f.share).padStart(5)}%  ${String(f.ms).padStart(6)} ms  ${f.name}`);
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, json: { type: 'boolean' } },
  });
  for (const file of positionals) {
    const s = summarise(JSON.parse(readFileSync(file, 'utf8')), Number(values.top));
    process.stdout.write(values.json ? `${JSON.stringify(s)}\n` : `${format(s, file)}\n`);
  }
}
