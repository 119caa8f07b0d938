import { RUN } from './env';

export default async function globalSetup(): Promise<void> {
  process.env.RCFLOW_TEST_RUN = RUN;
}
