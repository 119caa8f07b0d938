import type { ServerMessage } from '@rcflow/agent-protocol';
import type { LineConsole } from './terminal-console';

type StartSession = Extract<ServerMessage, { type: 'start_session' }>;

export interface ConsentRequest {
  commandId: string;
  sessionId: string;
  viewer: string;
  sessionType: StartSession['sessionType'];
  access: StartSession['access'];
  timeoutMs: number;
  /** Who is logged on now; policy providers answer in that user's name. */
  loggedOnUser: string | null;
  /** Aborted when the server ends the session before anyone answered. */
  signal?: AbortSignal;
}

export interface ConsentAnswer {
  outcome: 'granted' | 'denied' | 'timed_out';
  /** The user who answered; null when nobody did. */
  answeredBy: string | null;
}

export interface ConsentProvider {
  ask(request: ConsentRequest): Promise<ConsentAnswer>;
}

export type ConsentPolicy = 'accept' | 'deny' | 'none';

/** Resolves timed_out after timeoutMs, or sooner if the request is withdrawn. */
export function waitForTimeout(timeoutMs: number, signal?: AbortSignal): Promise<ConsentAnswer> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve({ outcome: 'timed_out', answeredBy: null });
    };
    const timer = setTimeout(done, timeoutMs);
    if (signal?.aborted) done();
    else signal?.addEventListener('abort', done, { once: true });
  });
}

/** Answers every request the same way: for unattended machines and tests. */
export class PolicyConsentProvider implements ConsentProvider {
  constructor(readonly policy: ConsentPolicy) {}

  async ask(request: ConsentRequest): Promise<ConsentAnswer> {
    if (this.policy === 'none') return waitForTimeout(request.timeoutMs, request.signal);
    return { outcome: this.policy === 'accept' ? 'granted' : 'denied', answeredBy: request.loggedOnUser };
  }
}

export interface ConsentRatios {
  accept: number;
  deny: number;
  timeout: number;
}

/**
 * Picks an outcome per command from a draw in [0, 1): the simulator passes a draw seeded by the
 * command, so a rerun with the same seed answers the same commands the same way.
 */
export class RatioConsentProvider implements ConsentProvider {
  constructor(
    private readonly ratios: ConsentRatios,
    private readonly draw: (request: ConsentRequest) => number,
  ) {}

  async ask(request: ConsentRequest): Promise<ConsentAnswer> {
    const total = this.ratios.accept + this.ratios.deny + this.ratios.timeout;
    const x = this.draw(request) * total;
    if (x < this.ratios.accept) return { outcome: 'granted', answeredBy: request.loggedOnUser };
    if (x < this.ratios.accept + this.ratios.deny) return { outcome: 'denied', answeredBy: request.loggedOnUser };
    return waitForTimeout(request.timeoutMs, request.signal);
  }
}

const WHAT: Record<ConsentRequest['sessionType'], string> = {
  'remote-control': 'remote-control',
  'remote-assistance': 'offer remote assistance to',
  'remote-desktop': 'open a remote desktop on',
};

export function consentQuestion(request: Pick<ConsentRequest, 'viewer' | 'sessionType' | 'access' | 'timeoutMs'>): string {
  const access = request.access === 'full' ? 'full control' : 'view only';
  const seconds = Math.ceil(request.timeoutMs / 1000);
  return `${request.viewer} asks to ${WHAT[request.sessionType]} this computer (${access}). Allow? [y/N] (times out in ${seconds} s)`;
}

/** Asks whoever sits at the terminal. */
export class PromptConsentProvider implements ConsentProvider {
  /** `whoAnswers` names the person at the terminal when no logged-on user is known. */
  constructor(
    private readonly console: LineConsole,
    private readonly whoAnswers: () => string | null = () => null,
  ) {}

  async ask(request: ConsentRequest): Promise<ConsentAnswer> {
    const line = await this.console.ask(consentQuestion(request), request.timeoutMs, request.signal);
    if (line === null) return { outcome: 'timed_out', answeredBy: null };
    const answeredBy = request.loggedOnUser ?? this.whoAnswers();
    return { outcome: /^\s*(y|yes)\s*$/i.test(line) ? 'granted' : 'denied', answeredBy };
  }
}
