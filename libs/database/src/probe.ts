import { Client } from 'pg';

/** Connects once to PostgreSQL at `url` and runs `SELECT 1`, failing within `timeoutMs`. */
export async function probeDatabase(url: string, timeoutMs = 5000): Promise<void> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: timeoutMs, application_name: 'rcflow-startup-check' });
  client.on('error', () => undefined); // the connect or query in flight rejects with it
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}
