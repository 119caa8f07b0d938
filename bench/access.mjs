// Benchmark 6: the access review (issue 12) at BENCH_ACCESS_DEVICES devices (default 10,000) and
// BENCH_ACCESS_PRINCIPALS principals (default 1,000; a tenth of them groups, nested two deep), in
// 50 collections with 10 custom settings sets, loaded by SQL. Then, BENCH_REPS times:
//   device:    GET /v1/access-review/devices/:id for BENCH_ACCESS_QUERIES random devices, one at a
//              time → p50/p95 ms (goal ≤ 500 ms).
//   principal: GET /v1/access-review/principals/:id as NDJSON, read to its end, for a principal who
//              reaches every device (an operator over every collection, in a group named in every
//              set's permitted viewers) → devices/s (goal ≥ 5,000/s).
import http from 'node:http';
import { Stack } from './lib/stack.mjs';
import { client, keepAliveAgent } from './lib/http.mjs';
import { nowMs, percentiles, round } from './lib/stats.mjs';

const COLLECTIONS = 50;
const SETS = 10;

async function seed(stack, devices, principals) {
  const groups = Math.max(2, Math.floor(principals / 10));
  const users = principals - groups;
  await stack.q(`INSERT INTO collections (id, name) SELECT gen_random_uuid(), 'BC-' || i FROM generate_series(1, ${COLLECTIONS}) i`);
  await stack.q(
    `INSERT INTO devices (id, hostname, os_family, os_build, agent_version, domain_joined, enrolled, local_administrators)
     SELECT gen_random_uuid(), 'BD-' || i, 'windows', '10.0.22631', '1.2.0', true, true, ARRAY['ADMIN', 'bu-' || (i % ${users})]
       FROM generate_series(1, ${devices}) i`,
  );
  // Each device in one collection, a tenth in a second one too.
  await stack.q(
    `INSERT INTO collection_members (collection_id, device_id)
     SELECT c.id, d.id FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM devices WHERE hostname LIKE 'BD-%') d
       JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM collections WHERE name LIKE 'BC-%') c
         ON c.k = d.n % ${COLLECTIONS} OR (d.n % 10 = 0 AND c.k = (d.n + 7) % ${COLLECTIONS})`,
  );
  await stack.q(
    `INSERT INTO principals (id, name, kind) SELECT gen_random_uuid(), 'bu-' || i, 'user' FROM generate_series(0, ${users - 1}) i
     UNION ALL SELECT gen_random_uuid(), 'BG-' || i, 'group' FROM generate_series(0, ${groups - 1}) i
     UNION ALL SELECT gen_random_uuid(), 'reviewed', 'user'`,
  );
  // Users in groups (i % groups), every group but the first two in BG-(i % 2): nested memberships.
  await stack.q(
    `INSERT INTO group_members (group_id, member_id)
     SELECT g.id, u.id FROM principals u JOIN principals g ON g.name = 'BG-' || (substr(u.name, 4)::int % ${groups}) WHERE u.name LIKE 'bu-%'
     UNION ALL
     SELECT g.id, m.id FROM principals m JOIN principals g ON g.name = 'BG-' || (substr(m.name, 4)::int % 2)
      WHERE m.name LIKE 'BG-%' AND substr(m.name, 4)::int >= 2
     UNION ALL
     SELECT g.id, r.id FROM principals r, principals g WHERE r.name = 'reviewed' AND g.name = 'BG-5'`,
  );
  // Every group an operator over five collections; a tenth of the users directly over one; 'reviewed' over all.
  await stack.q(
    `INSERT INTO role_assignments (id, principal_id, role, collection_ids)
     SELECT gen_random_uuid(), g.id, 'remote_tools_operator',
            ARRAY(SELECT c.id FROM collections c WHERE c.name LIKE 'BC-%' ORDER BY md5(c.name || g.name) LIMIT 5)
       FROM principals g WHERE g.name LIKE 'BG-%'
     UNION ALL
     SELECT gen_random_uuid(), u.id, 'remote_tools_operator',
            ARRAY(SELECT c.id FROM collections c WHERE c.name LIKE 'BC-%' ORDER BY md5(c.name || u.name) LIMIT 1)
       FROM principals u WHERE u.name LIKE 'bu-%' AND substr(u.name, 4)::int % 10 = 0
     UNION ALL
     SELECT gen_random_uuid(), r.id, 'remote_tools_operator', NULL FROM principals r WHERE r.name = 'reviewed'`,
  );
  // Ten custom sets, each deployed to five collections, naming BG-0, BG-5 and four more groups.
  for (let s = 0; s < SETS; s++) {
    const viewers = ['BG-0', 'BG-5', ...[1, 2, 3, 4].map((k) => `BG-${(s * 7 + k * 13) % groups}`)];
    const rt = {
      enabled: true,
      permittedViewers: viewers,
      ...(s % 3 === 0 ? { manageSolicitedRA: true, remoteAssistanceLevel: 'full' } : {}),
    };
    const [{ id }] = await stack.q(
      `INSERT INTO client_settings (id, name, priority, remote_tools) VALUES (gen_random_uuid(), $1, $2, $3) RETURNING id`,
      [`BS-${s}`, 10 + s, JSON.stringify(rt)],
    );
    await stack.q(
      `INSERT INTO settings_deployments (settings_id, collection_id)
       SELECT $1, c.id FROM collections c WHERE c.name LIKE 'BC-%' AND substr(c.name, 4)::int % ${SETS} = ${s}`,
      [id],
    );
  }
  await stack.q('ANALYZE');
  const [{ id: reviewed }] = await stack.q(`SELECT id FROM principals WHERE name = 'reviewed'`);
  const ids = (await stack.q(`SELECT id FROM devices WHERE hostname LIKE 'BD-%'`)).map((r) => r.id);
  return { reviewed, deviceIds: ids };
}

function readNdjson(url, key) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    let lines = 0;
    let bytes = 0;
    let tail = '';
    http
      .get(url, { headers: { authorization: `Bearer ${key}`, accept: 'application/x-ndjson' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`${url}: ${res.statusCode}`));
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          bytes += chunk.length;
          const parts = (tail + chunk).split('\n');
          tail = parts.pop();
          lines += parts.length;
        });
        res.on('end', () => resolve({ lines, bytes, seconds: (nowMs() - t0) / 1000 }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

export async function run(ctx) {
  const P = ctx.params;
  const devices = Number(process.env.BENCH_ACCESS_DEVICES ?? 10_000);
  const principals = Number(process.env.BENCH_ACCESS_PRINCIPALS ?? 1_000);
  const queries = Number(process.env.BENCH_ACCESS_QUERIES ?? (P.quick ? 50 : 200));
  const stack = new Stack('access', ctx, P.rcflowEnv);
  const reps = [];
  try {
    await stack.init();
    ctx.log(`  access: loading ${devices} devices and ${principals} principals`);
    const { reviewed, deviceIds } = await seed(stack, devices, principals);
    await stack.startApi();
    const api = client(stack.api.url, stack.adminKey, keepAliveAgent(1));
    // Warm-up: the first requests compile the hot paths.
    for (const id of deviceIds.slice(0, 20)) await api.get(`/v1/access-review/devices/${id}`);
    for (let rep = 0; rep < P.reps; rep++) {
      const ms = [];
      let entries = 0;
      for (let i = 0; i < queries; i++) {
        const id = deviceIds[Math.floor(Math.random() * deviceIds.length)];
        const r = await api.get(`/v1/access-review/devices/${id}`);
        if (r.status !== 200) throw new Error(`device review: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`);
        ms.push(r.ms);
        entries += r.body.entries.length;
      }
      const stream = await readNdjson(`${stack.api.url}/v1/access-review/principals/${reviewed}?format=ndjson`, stack.adminKey);
      if (stream.lines !== devices) throw new Error(`the principal's review streamed ${stream.lines} devices of ${devices}`);
      const p = percentiles(ms);
      reps.push({
        devices,
        principals,
        deviceP50: round(p.p50, 1),
        deviceP95: round(p.p95, 1),
        entriesPerDevice: round(entries / queries, 1),
        principalDevicesPerSecond: Math.round(stream.lines / stream.seconds),
        principalSeconds: round(stream.seconds, 2),
        principalMiB: round(stream.bytes / 1048576, 1),
      });
      ctx.log(`  access rep ${rep + 1}: ${JSON.stringify(reps[reps.length - 1])}`);
    }
    return { reps };
  } finally {
    await stack.stopProcs();
    await stack.destroy(ctx.redis);
  }
}
