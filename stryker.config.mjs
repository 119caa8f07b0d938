// Mutation testing (npm run test:mutation; not part of npm test). Scores and survivors: TESTING.md.
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'jest',
  jest: { configFile: 'jest.stryker.config.js', enableFindRelatedTests: false },
  checkers: ['typescript'],
  tsconfigFile: 'tsconfig.json',
  coverageAnalysis: 'perTest',
  // Mutants of module-level constants (role tables, the default policy) would each rerun every
  // spec; the specs pin those tables value by value instead (rbac.spec.ts, eligibility.spec.ts).
  ignoreStatic: true,
  concurrency: 2,
  mutate: [
    'libs/domain/src/**/*.ts',
    '!libs/domain/src/**/*.spec.ts',
    '!libs/domain/src/index.ts',
    '!libs/domain/src/types.ts',
    // The pure parts of the audit chain and its verification. The I/O around them
    // (audit-verifier.ts, audit-verify-reader.ts, audit-copy-check.ts's COPY reader, copy-out.ts)
    // is held by test/integration/audit-*.spec.ts on PostgreSQL, outside this run; so is
    // copy-text.ts, the COPY text parser, whose byte loops make slow timeouts of its mutants.
    'libs/audit/src/audit-chain.ts',
    'libs/audit/src/audit-chain-walk.ts',
    'apps/api/src/auth/auth.guard.ts',
    // The transition owner and intake (libs/sessions): the batcher and the intake's refusal rules
    // are unit-tested; the statements themselves are held by test/integration/session-transitions,
    // transition-batcher and sessions-intake specs on PostgreSQL, outside this run.
    'libs/sessions/src/transition-batcher.ts',
    'libs/sessions/src/intake/intake-batcher.ts',
    'libs/sessions/src/intake/intake-statement.ts',
    'libs/workflow/src/sessions.processor.ts',
  ],
  ignorePatterns: ['dist', 'bench', '.rcflow', 'reports', 'test-results.json', '.git'],
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  timeoutMS: 5000,
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
