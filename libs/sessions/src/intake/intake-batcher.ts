import { StatementBatcher } from '@rcflow/database';
import type { IntakeOutcome, IntakeRow } from './intake-statement';

/** Runs one intake statement for some rows and answers for each, by session id. */
export type IntakeRunner = (rows: IntakeRow[]) => Promise<Map<string, IntakeOutcome>>;

/**
 * Intake's requests sent to PostgreSQL together (see StatementBatcher): requests sent together
 * commit together or not at all; a request the statement did not answer for fails alone.
 */
export class IntakeBatcher extends StatementBatcher<IntakeRow, IntakeOutcome> {
  constructor(run: IntakeRunner, maxInFlight: number, maxBatch: number) {
    super(
      async (rows) => {
        const outcomes = await run(rows);
        return rows.map((r) => outcomes.get(r.id));
      },
      maxInFlight,
      maxBatch,
      (row) => `session ${row.id}`,
    );
  }
}
