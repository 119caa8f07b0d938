// Mutation testing one file at a time (TESTING.md "Mutation testing → Scores"):
//   MUT_FILE=libs/domain/src/errors.ts MUT_NAME=errors npx stryker run stryker.file.mjs
// Report: reports/mutation/<MUT_NAME>.json and .html. Runs one file at a time, not in parallel
// with another Stryker run. Differs from stryker.config.mjs in two ways: no TypeScript checker
// (`checkers: []`; with it each mutant took ~30 s) and timeoutMS 20000 (the machine was loaded).
import base from './stryker.config.mjs';

const name = process.env.MUT_NAME;
export default {
  ...base,
  mutate: [process.env.MUT_FILE],
  checkers: [],
  timeoutMS: 20000,
  reporters: ['json', 'html', 'clear-text'],
  jsonReporter: { fileName: `reports/mutation/${name}.json` },
  htmlReporter: { fileName: `reports/mutation/${name}.html` },
};
