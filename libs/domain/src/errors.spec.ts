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
type Case = [error: DomainError, name: string, status: number, code: string, message: string, details: unknown];

describe('DomainError subclasses', () => {
  it.each<Case>([
    [
      new ValidationFailed('reason is required', { field: 'reason' }),
      'ValidationFailed',
      400,
      'validation_failed',
      'reason is required',
      { field: 'reason' },
    ],
    [
      new Unauthenticated(),
      'Unauthenticated',
      401,
      'unauthenticated',
      'a valid API key is required (Authorization: Bearer <key>)',
      undefined,
    ],
    [new Unauthenticated('API key revoked'), 'Unauthenticated', 401, 'unauthenticated', 'API key revoked', undefined],
    [new Forbidden('missing session.cancel'), 'Forbidden', 403, 'forbidden', 'missing session.cancel', undefined],
    [new NotFound('session', 's-1'), 'NotFound', 404, 'not_found', 'session s-1 does not exist or is outside your scope', undefined],
    [new Conflict('already ended', { state: 'ended' }), 'Conflict', 409, 'conflict', 'already ended', { state: 'ended' }],
    [
      new UnprocessableRequest('device offline', { deviceId: 'd-1' }),
      'UnprocessableRequest',
      422,
      'unprocessable',
      'device offline',
      { deviceId: 'd-1' },
    ],
    [new TooManyRequests(7), 'TooManyRequests', 429, 'rate_limited', 'too many requests; retry after 7 s', { retryAfterSeconds: 7 }],
    [
      new ShuttingDown(),
      'ShuttingDown',
      503,
      'shutting_down',
      'this rcflow process is shutting down; retry against another instance',
      undefined,
    ],
  ])('%s carries name %s, status %d, code %s, its message and details', (error, name, status, code, message, details) => {
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
