// The suite always ends. Once jest has reported the whole run, something left open (a Redis
// client reconnecting to a server a test killed, a pool, a child process) would keep node
// alive and CI waiting in silence: after a grace period this says so and exits non-zero, even
// when every test passed, since a leaked handle is a defect to fix (find it with
// --detectOpenHandles). The timer is unref'd: a run that ends by itself never waits for it.
const GRACE_MS = Number(process.env.RCFLOW_TEST_EXIT_GRACE_MS ?? 60_000);

class ExitGuardReporter {
  onRunComplete(_contexts, results) {
    // Once nothing is left to do, exit at once (with the code jest set in its 'exit' handler). Left
    // to itself Node then closes the remaining unref'd handles first, and a full run was seen to
    // spin there for good (node::Environment::CleanupHandles, 100 % CPU, no syscall) after every
    // test had passed; the timer below cannot fire once the loop has ended.
    process.once('beforeExit', () => process.exit());
    const timer = setTimeout(() => {
      process.stderr.write(
        `\n[exit-guard] jest did not exit ${GRACE_MS / 1000} s after the run completed: open handles keep it alive ` +
          `(run with --detectOpenHandles to find them). Exiting with failure` +
          `${results.numFailedTests || results.numRuntimeErrorTestSuites ? ' (tests also failed)' : ''}.\n`,
      );
      process.exit(1);
    }, GRACE_MS);
    timer.unref();
  }
}

module.exports = ExitGuardReporter;
