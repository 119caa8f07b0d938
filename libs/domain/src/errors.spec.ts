import {
  Conflict,
  DomainError,
  Forbidden,
  NotFound,
  ShuttingDown,
  TooManyRequests,
  Unauthenticated,
  UnprocessableRequest,
  ValidationFailed,
} from './errors';

// The API's ErrorFilter answers { error: { status, code, message, details? } } straight from these
// fields (and TooManyRequests' details.retryAfterSeconds becomes the Retry-After header), so each
// class's status, code and message are the client-facing contract.
type Case = [name: string, status: number, code: string, message: string, details: unknown, make: () => DomainError];

describe('DomainError subclasses', () => {
  // The errors are built inside the test, not in the table: StrykerJS counts code run while jest
  // collects the tests as static, covered by no test.
  it.each<Case>([
    [
      'ValidationFailed',
      400,
      'validation_failed',
      'reason is required',
      { field: 'reason' },
      () => new ValidationFailed('reason is required', { field: 'reason' }),
    ],
    [
      'Unauthenticated',
      401,
      'unauthenticated',
      'a valid API key is required (Authorization: Bearer <key>)',
      undefined,
      () => new Unauthenticated(),
    ],
    ['Unauthenticated', 401, 'unauthenticated', 'API key revoked', undefined, () => new Unauthenticated('API key revoked')],
    ['Forbidden', 403, 'forbidden', 'missing session.cancel', undefined, () => new Forbidden('missing session.cancel')],
    ['NotFound', 404, 'not_found', 'session s-1 does not exist or is outside your scope', undefined, () => new NotFound('session', 's-1')],
    ['Conflict', 409, 'conflict', 'already ended', { state: 'ended' }, () => new Conflict('already ended', { state: 'ended' })],
    [
      'UnprocessableRequest',
      422,
      'unprocessable',
      'device offline',
      { deviceId: 'd-1' },
      () => new UnprocessableRequest('device offline', { deviceId: 'd-1' }),
    ],
    ['TooManyRequests', 429, 'rate_limited', 'too many requests; retry after 7 s', { retryAfterSeconds: 7 }, () => new TooManyRequests(7)],
    [
      'ShuttingDown',
      503,
      'shutting_down',
      'this rcflow process is shutting down; retry against another instance',
      undefined,
      () => new ShuttingDown(),
    ],
  ])('%s has status %d, code %s, its message and details', (name, status, code, message, details, make) => {
    const error = make();
    expect(error).toBeInstanceOf(DomainError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe(name);
    expect(error.status).toBe(status);
    expect(error.code).toBe(code);
    expect(error.message).toBe(message);
    expect(error.details).toEqual(details);
  });

  it('leaves details undefined when none are given', () => {
    expect(new ValidationFailed('bad').details).toBeUndefined();
    expect(new Conflict('taken').details).toBeUndefined();
    expect(new UnprocessableRequest('no').details).toBeUndefined();
  });
});
