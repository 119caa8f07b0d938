import { UsageError } from './cli-args';
import { streamLogger } from './logger';
import { parseSimulatorArgs, SIMULATOR_USAGE } from './simulator-options';
import { VirtualFleet } from './virtual-fleet';

function fail(message: string, code: number): never {
  process.stderr.write(`rcflow-simulator: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseSimulatorArgs>;
  try {
    parsed = parseSimulatorArgs(argv);
  } catch (err) {
    if (err instanceof UsageError) fail(`${err.message}\nRun with --help to see the options.`, 64);
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(SIMULATOR_USAGE);
    return;
  }
  const o = parsed.options;
  const log = streamLogger(process.stderr);
  const fleet = new VirtualFleet(o, log);

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal} received; closing ${fleet.live} connection(s)`);
    const force = setTimeout(() => process.exit(0), 10_000);
    void fleet.stop().finally(() => {
      clearTimeout(force);
      log.info(fleet.statusLine());
      log.info('simulator stopped');
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  fleet.loadState();
  await fleet.enrolMissing();
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- set by the signal handler during the await
  if (stopping) return;
  if (fleet.counters.enrolFailed === o.count) fail('no virtual agent could enrol', 2);
  fleet.onAllRefused = () => {
    log.error('the server refused every virtual agent; stopping');
    process.exit(2);
  };
  fleet.start();
  setInterval(() => log.info(fleet.statusLine()), o.statusSeconds * 1000);
}

process.on('unhandledRejection', (err) => fail(`unexpected failure: ${(err as Error | null | undefined)?.stack ?? String(err)}`, 1));
main(process.argv.slice(2)).catch((err: unknown) => fail((err as Error).message, 1));
