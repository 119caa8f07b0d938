// Every @nestjs/* 12 package is ESM-only; jest on Node 20 loads them only after swc turns them into CommonJS.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      keepClassNames: true,
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];
const swcJs = ['@swc/jest', { jsc: { parser: { syntax: 'ecmascript' }, target: 'es2022' }, module: { type: 'commonjs' } }];

const common = {
  testEnvironment: 'node',
  transform: { '^.+\\.ts$': swc, '^.+\\.(js|mjs|cjs)$': swcJs },
  transformIgnorePatterns: [
    '/node_modules/(?!(@nestjs|@seriousme|commander|@electric-sql/pglite|file-type|strtok3|token-types|@tokenizer|@borewit|uint8array-extras|uuid|nanoid|chalk)/)',
  ],
  moduleNameMapper: {
    '^@rcflow/([a-z-]+)$': '<rootDir>/libs/$1/src/index.ts',
  },
  moduleFileExtensions: ['ts', 'js', 'mjs', 'cjs', 'json'],
  // StrykerJS copies the project there (npm run test:mutation); never one of ours.
  modulePathIgnorePatterns: ['<rootDir>/.stryker-tmp/'],
};

module.exports = {
  rootDir: __dirname,
  // The suite always ends: a run kept alive by a leaked handle fails loudly instead of hanging.
  reporters: ['default', '<rootDir>/test/support/exit-guard-reporter.js'],
  projects: [
    { ...common, rootDir: __dirname, displayName: 'unit', testMatch: ['<rootDir>/{apps,libs}/**/*.spec.ts'] },
    // Checks of files that are not code (docker-compose.yml, Dockerfile): nothing to start.
    { ...common, rootDir: __dirname, displayName: 'static', testMatch: ['<rootDir>/test/static/**/*.spec.ts'] },
    {
      ...common,
      rootDir: __dirname,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.spec.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/support/integration-timeout.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      ...common,
      rootDir: __dirname,
      displayName: 'e2e',
      setupFilesAfterEnv: ['<rootDir>/test/support/e2e-timeout.ts'],
      testMatch: ['<rootDir>/test/e2e/**/*.e2e-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
    {
      ...common,
      rootDir: __dirname,
      displayName: 'faults',
      setupFilesAfterEnv: ['<rootDir>/test/support/e2e-timeout.ts'],
      testMatch: ['<rootDir>/test/faults/**/*.fault-spec.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
