/**
 * Runs every step of a teardown even when earlier ones fail or hang, each bounded by `stepMs`,
 * then throws the first failure. A suite that killed a service tears down whatever happened: one
 * step that throws (a queue closing on a dead Redis) must not leave a pool or a process behind,
 * which would keep jest from exiting.
 */
export async function tearDown(steps: Record<string, () => unknown>, stepMs = 10_000): Promise<void> {
  const failures: string[] = [];
  for (const [name, step] of Object.entries(steps)) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        Promise.resolve().then(step),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`did not finish within ${stepMs} ms`)), stepMs);
        }),
      ]);
    } catch (err) {
      failures.push(`${name}: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }
  if (failures.length) throw new Error(`teardown failed (every step was still tried):\n${failures.join('\n')}`);
}
