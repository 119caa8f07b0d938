import { execFile } from 'node:child_process';
import * as os from 'node:os';
import type { Presence } from '@rcflow/agent-protocol';

export type OsFamily = Presence['osFamily'];
export const OS_FAMILIES: readonly OsFamily[] = ['windows', 'linux', 'macos'];

/** What the agent knows of the machine; the applied settings hash comes from the state store. */
export type MachineFacts = Omit<Presence, 'appliedSettingsHash'>;

const OS_FAMILY_OF: Partial<Record<NodeJS.Platform, OsFamily>> = { win32: 'windows', darwin: 'macos', linux: 'linux' };

export function osFamilyOf(platform: NodeJS.Platform): OsFamily | null {
  return OS_FAMILY_OF[platform] ?? null;
}

// Local seats only: pts/N lines are ssh sessions and terminal emulators, and the person who
// must consent to remote control is the one sitting at the machine.
const LOCAL_LINE = /^(console|tty[\w/]*|:\d+(\.\d+)?|seat\d+)$/;

/** The first user `who` lists on a console, tty or local display, or null if there is none. */
export function parseWho(output: string): string | null {
  for (const raw of output.split('\n')) {
    const [user, line] = raw.trim().split(/\s+/);
    if (user && line && LOCAL_LINE.test(line)) return user;
  }
  return null;
}

export type WhoRunner = () => Promise<string>;

const runWho: WhoRunner = () =>
  new Promise((resolve, reject) =>
    // eslint-disable-next-line @typescript-eslint/prefer-promise-reject-errors -- err is an Error; @types/node builds its type with Omit, which loses that
    execFile('who', { timeout: 2000, maxBuffer: 256 * 1024 }, (err, stdout) => (err ? reject(err) : resolve(stdout))),
  );

/** Who is logged on at the console; null when nobody is, or when `who` cannot tell. */
export async function detectLoggedOnUser(run: WhoRunner = runWho): Promise<string | null> {
  try {
    return parseWho(await run());
  } catch {
    return null;
  }
}

export interface MachinePresenceOptions {
  osFamily?: OsFamily;
  osBuild?: string;
  agentVersion: string;
  fqdn: string | null;
  domain: string | null;
  /** A name, null for "nobody", undefined to ask the machine on every read. */
  user: string | null | undefined;
  locked: boolean;
  localAdministrators: string[];
  who?: WhoRunner;
}

/** The reference agent's facts: flags where given, the running machine otherwise. */
export class MachinePresence {
  private readonly fixed: Omit<MachineFacts, 'loggedOnUser'>;

  constructor(private readonly options: MachinePresenceOptions) {
    const osFamily = options.osFamily ?? osFamilyOf(process.platform);
    if (!osFamily) throw new Error(`cannot map platform ${process.platform} to an OS family; pass --os-family`);
    this.fixed = {
      agentVersion: options.agentVersion,
      osFamily,
      osBuild: (options.osBuild ?? os.release()).slice(0, 64),
      fqdn: options.fqdn,
      domainJoined: options.domain !== null,
      domain: options.domain,
      locked: options.locked,
      localAdministrators: options.localAdministrators,
    };
  }

  async read(): Promise<MachineFacts> {
    const loggedOnUser = this.options.user !== undefined ? this.options.user : await detectLoggedOnUser(this.options.who);
    return { ...this.fixed, loggedOnUser: loggedOnUser === null ? null : loggedOnUser.slice(0, 256) };
  }
}
