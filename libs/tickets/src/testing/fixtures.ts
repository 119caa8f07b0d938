import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** ../shared/fixtures/tickets beside the checkout (as CI lays it out), or RCFLOW_TICKET_FIXTURES. */
export const TICKET_FIXTURES = process.env.RCFLOW_TICKET_FIXTURES ?? resolve(__dirname, '../../../../../shared/fixtures/tickets');

export function fixtureBytes(name: string): Buffer {
  return readFileSync(resolve(TICKET_FIXTURES, name));
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the fixture's shape
export function fixture<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fixtureBytes(name).toString('utf8')) as T;
}
