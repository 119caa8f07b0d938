// Jest for StrykerJS (stryker.config.mjs): the `unit` project of jest.config.js (same swc
// transform and module mapping) narrowed to the specs of the mutated code, so each mutant runs
// only fast, database-free tests.
const { projects } = require('./jest.config.js');
const { displayName: _name, ...unit } = projects.find((p) => p.displayName === 'unit');

module.exports = {
  ...unit,
  rootDir: __dirname,
  testMatch: [
    '<rootDir>/libs/domain/src/**/*.spec.ts',
    '<rootDir>/libs/audit/src/**/*.spec.ts',
    '<rootDir>/apps/api/src/auth/**/*.spec.ts',
    '<rootDir>/libs/sessions/src/**/*.spec.ts',
    '<rootDir>/libs/workflow/src/**/*.spec.ts',
  ],
};
