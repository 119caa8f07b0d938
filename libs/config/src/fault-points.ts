import { existsSync, writeFileSync } from 'node:fs';

/**
 * Test-only fault injection, inert unless RCFLOW_FAULTS names a point (comma-separated) and
 * RCFLOW_FAULT_MARKER_DIR is set: the first process to reach the point kills itself with SIGKILL,
 * as a crash at the worst moment would. A marker file makes it fire once, so the restarted
 * process proceeds. Used by the fault suite (test/faults) to kill between an agent's answer and
 * the commit, and between the commit and the job's completion.
 */
export function faultPoint(name: 'after-agent-ack' | 'after-commit'): void {
  const faults = process.env.RCFLOW_FAULTS;
  const dir = process.env.RCFLOW_FAULT_MARKER_DIR;
  if (!faults || !dir || !faults.split(',').includes(name)) return;
  const marker = `${dir}/${name}.fired`;
  if (existsSync(marker)) return;
  writeFileSync(marker, String(process.pid));
  process.kill(process.pid, 'SIGKILL');
}
