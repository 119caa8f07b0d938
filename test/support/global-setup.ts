import { RUN } from './env';

export default function globalSetup(): Promise<void> {
  process.env.RCFLOW_TEST_RUN = RUN;
  return Promise.resolve();
}
