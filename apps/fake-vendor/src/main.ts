import { parseArgs } from 'node:util';
import { TICKET_KINDS, type TicketKind } from '@rcflow/tickets';
import { DEFAULT_CREDENTIALS, FakeVendor } from './fake-vendor';

const USAGE = `Usage: npm run fake-vendor -- <kind> [--port N] [--host H] [--credentials k=v,...]

A fake ticket system that takes rcflow's write-back notes as the vendor's API would.
  <kind>             ${TICKET_KINDS.join(', ')}
  --port N           port to listen on (default 4010; 0 picks a free one)
  --host H           address to bind (default 127.0.0.1)
  --credentials      the outbound credentials to expect, e.g. email=me@acme.io,apiToken=t
                     (default: printed at start)
Inspect: GET /_fake/notes, /_fake/refusals, /_fake/mode. Switch: POST /_fake/mode
{"mode":"ok"|"down"|"unreachable"} or {"mode":"throttle","count":2,"retryAfter":"1"}; POST /_fake/reset.
`;

function fail(message: string): never {
  process.stderr.write(`fake-vendor: ${message}\n\n${USAGE}`);
  process.exit(64);
}

function parseCredentials(kind: TicketKind, raw: string | undefined): Record<string, string> {
  const fields = { ...DEFAULT_CREDENTIALS[kind] };
  for (const pair of raw ? raw.split(',') : []) {
    const at = pair.indexOf('=');
    const key = pair.slice(0, at).trim();
    if (at < 1 || !(key in fields)) fail(`--credentials: "${pair}" is not one of ${Object.keys(fields).join(', ')} as key=value`);
    fields[key] = pair.slice(at + 1);
  }
  return fields;
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        port: { type: 'string', default: '4010' },
        host: { type: 'string', default: '127.0.0.1' },
        credentials: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    return fail((err as Error).message);
  }
}

async function main(argv: string[]): Promise<void> {
  const parsed = parse(argv);
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const kind = positionals[0] as TicketKind | undefined;
  if (positionals.length !== 1 || !kind || !TICKET_KINDS.includes(kind)) fail('give exactly one kind');
  const port = Number(values.port);
  if (!/^\d{1,5}$/.test(values.port) || port > 65535) fail(`--port must be 0 to 65535, got ${values.port}`);
  const credentials = parseCredentials(kind, values.credentials);

  const firstLine = (text: string) => text.split('\n', 1)[0] ?? '';
  const fake = new FakeVendor(kind, {
    credentials,
    onNote: (n) => process.stdout.write(`note ${n.kind} ${n.ticket}${n.private ? '' : ' (public)'}: ${firstLine(n.text)}\n`),
    onRefusal: (r) => process.stdout.write(`refused ${r.status} ${r.method} ${r.path}: ${r.reason}\n`),
  });
  const url = await fake.listen(port, values.host);
  process.stdout.write(
    `fake ${kind} listening on ${url}\n` +
      `base URL for the integration: ${url}\n` +
      `outbound credentials: ${JSON.stringify(credentials)}\n`,
  );

  const stop = () => void fake.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`fake-vendor: ${(err as Error).message}\n`);
  process.exit(1);
});
