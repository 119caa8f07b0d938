import { detectLoggedOnUser, MachinePresence, osFamilyOf, parseWho } from './presence';

describe('parseWho', () => {
  it('takes the first user on a console or tty', () => {
    const out = [
      'bob      pts/0        2024-05-01 09:12 (10.0.0.7)',
      'alice    tty2         2024-05-01 08:00 (tty2)',
      'carol    tty3         2024-05-01 08:30',
    ].join('\n');
    expect(parseWho(out)).toBe('alice');
  });

  it('accepts local X displays, seats and the macOS console', () => {
    expect(parseWho('dave     :0           2024-05-01 08:00 (:0)\n')).toBe('dave');
    expect(parseWho('erin     seat0        2024-05-01 08:00\n')).toBe('erin');
    expect(parseWho('frank    console  May  1 08:00 \n')).toBe('frank');
  });

  it('returns null when only remote sessions or nothing are listed', () => {
    expect(parseWho('bob      pts/0        2024-05-01 09:12 (10.0.0.7)\n')).toBeNull();
    expect(parseWho('')).toBeNull();
    expect(parseWho('\n\n')).toBeNull();
  });
});

describe('detectLoggedOnUser', () => {
  it('returns null when who fails', async () => {
    await expect(detectLoggedOnUser(() => Promise.reject(new Error('ENOENT')))).resolves.toBeNull();
  });

  it('parses what who prints', async () => {
    await expect(detectLoggedOnUser(() => Promise.resolve('alice tty1 2024-05-01 08:00\n'))).resolves.toBe('alice');
  });
});

describe('osFamilyOf', () => {
  it('maps the platforms rcflow knows', () => {
    expect(osFamilyOf('win32')).toBe('windows');
    expect(osFamilyOf('darwin')).toBe('macos');
    expect(osFamilyOf('linux')).toBe('linux');
    expect(osFamilyOf('aix')).toBeNull();
  });
});

describe('MachinePresence', () => {
  const base = { agentVersion: '1.2.3', fqdn: null, domain: null, locked: false, localAdministrators: [] };

  it('prefers flags to the machine', async () => {
    const who = jest.fn();
    const p = new MachinePresence({
      ...base,
      osFamily: 'windows',
      osBuild: '10.0.19045',
      user: 'alice',
      locked: true,
      domain: 'corp.example',
      fqdn: 'pc.corp.example',
      who,
    });
    expect(await p.read()).toEqual({
      agentVersion: '1.2.3',
      osFamily: 'windows',
      osBuild: '10.0.19045',
      fqdn: 'pc.corp.example',
      domainJoined: true,
      domain: 'corp.example',
      loggedOnUser: 'alice',
      locked: true,
      localAdministrators: [],
    });
    expect(who).not.toHaveBeenCalled();
  });

  it('reports nobody for --no-user and asks who otherwise, on every read', async () => {
    expect((await new MachinePresence({ ...base, user: null }).read()).loggedOnUser).toBeNull();
    const who = jest.fn().mockResolvedValueOnce('alice tty1 x\n').mockResolvedValueOnce('');
    const p = new MachinePresence({ ...base, user: undefined, who });
    expect((await p.read()).loggedOnUser).toBe('alice');
    expect((await p.read()).loggedOnUser).toBeNull();
  });
});
