/** Typed domain errors; the API's exception filter maps each to one HTTP status. */
export class DomainError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
export class ValidationFailed extends DomainError {
  constructor(message: string, details?: unknown) {
    super(400, 'validation_failed', message, details);
  }
}
export class Unauthenticated extends DomainError {
  constructor(message = 'a valid API key is required (Authorization: Bearer <key>)') {
    super(401, 'unauthenticated', message);
  }
}
export class Forbidden extends DomainError {
  constructor(message: string) {
    super(403, 'forbidden', message);
  }
}
export class NotFound extends DomainError {
  constructor(what: string, id: string) {
    super(404, 'not_found', `${what} ${id} does not exist or is outside your scope`);
  }
}
export class Conflict extends DomainError {
  constructor(message: string, details?: unknown) {
    super(409, 'conflict', message, details);
  }
}
export class UnprocessableRequest extends DomainError {
  constructor(message: string, details?: unknown) {
    super(422, 'unprocessable', message, details);
  }
}
export class TooManyRequests extends DomainError {
  constructor(retryAfterSeconds: number) {
    super(429, 'rate_limited', `too many requests; retry after ${retryAfterSeconds} s`, { retryAfterSeconds });
  }
}
export class ShuttingDown extends DomainError {
  constructor() {
    super(503, 'shutting_down', 'this rcflow process is shutting down; retry against another instance');
  }
}
