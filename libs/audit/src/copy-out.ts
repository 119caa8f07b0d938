import type { Client, ClientConfig } from 'pg';

/** What of node-postgres' connection a COPY needs: send a simple query, and pause reading the socket. */
interface WireConnection {
  query(text: string): void;
  stream: { pause(): void; resume(): void };
}

/** A running `COPY (...) TO STDOUT`: rows arrive through `onRow`; `done` settles with the row count. */
export interface CopyOut {
  readonly done: Promise<number>;
  /** Stops reading the socket: PostgreSQL then blocks on a full TCP window. Rows already received still arrive. */
  pause(): void;
  resume(): void;
}

/**
 * Runs `COPY (query) TO STDOUT` in text format on a node-postgres client and hands every row to
 * `onRow` as it arrives: one tab-separated line with its trailing newline, a view into the
 * socket buffer that is only valid during the call (copy what you keep). This is the protocol's
 * streaming path: no per-row objects, nothing buffered, and the server's speed rather than the
 * client's parser. `onRow` may throw; the COPY then still runs to its end (its rows are dropped)
 * and `done` rejects with that error — end the client instead to stop it at once.
 * COPY takes no bind parameters: quote every value with `escapeLiteral`.
 */
export function copyOut(client: Client, query: string, onRow: (line: Buffer) => void): CopyOut {
  const connection = (client as unknown as { connection: WireConnection }).connection;
  let rows = 0;
  let failure: unknown = null;
  let settle!: { resolve: (n: number) => void; reject: (e: unknown) => void };
  const done = new Promise<number>((resolve, reject) => (settle = { resolve, reject }));
  // node-postgres calls these handlers (the interface pg-cursor and pg-copy-streams implement).
  const submittable = {
    submit(c: WireConnection) {
      c.query(`COPY (${query}) TO STDOUT`);
    },
    handleCopyData(message: { chunk: Buffer }) {
      if (failure) return;
      try {
        rows++;
        onRow(message.chunk);
      } catch (err) {
        failure = err;
      }
    },
    handleCommandComplete() {
      // nothing to do: COPY TO answers with CopyData only
    },
    handleReadyForQuery() {
      if (failure) settle.reject(failure);
      else settle.resolve(rows);
    },
    handleError(err: Error) {
      failure ??= err;
      // A broken connection sends no ReadyForQuery.
      settle.reject(failure);
    },
    handleEmptyQuery() {
      // nothing to do: COPY TO answers with CopyData only
    },
    handleRowDescription() {
      // nothing to do: COPY TO answers with CopyData only
    },
    handleDataRow() {
      // nothing to do: COPY TO answers with CopyData only
    },
    handleCopyInResponse() {
      failure ??= new Error('COPY FROM is not supported here');
    },
  };
  void client.query(submittable as never);
  return {
    done,
    pause: () => connection.stream.pause(),
    resume: () => connection.stream.resume(),
  };
}

/** Whether a client is a node-postgres network client (and not, e.g., the embedded PGlite adapter). */
export function supportsCopyOut(client: unknown): client is Client {
  const c = (client as { connection?: Partial<WireConnection> } | null)?.connection;
  return typeof c?.query === 'function' && typeof c.stream?.pause === 'function';
}

/** Connection settings for a dedicated node-postgres client to the same database as a DataSource, or null (PGlite). */
export function pgClientConfig(
  options: { type: string; url?: string; ssl?: unknown; driver?: unknown },
  applicationName: string,
): ClientConfig | null {
  if (options.type !== 'postgres' || !options.url || options.driver) return null;
  const config: ClientConfig = { connectionString: options.url, application_name: applicationName };
  if (typeof options.ssl === 'boolean' || (typeof options.ssl === 'object' && options.ssl !== null)) config.ssl = options.ssl;
  return config;
}
