import { useState } from 'preact/hooks';
import { Result, get, query } from '../api';
import { Failure, Field, formText, TableWrap, show, useLoad, when } from '../ui';
import { AccessTable } from './access';
import { SessionTable } from './sessions';

interface Device {
  id: string;
  hostname: string;
  fqdn: string | null;
  domainJoined: boolean;
  osFamily: string;
  osBuild: string;
  agentVersion: string;
  lastHeartbeatAt: string | null;
  loggedOnUser: string | null;
  locked: boolean;
  retired: boolean;
  collectionIds: string[];
}

interface Effective {
  values: Record<string, unknown>;
  provenance: Record<string, { setId: string; setName: string; order: number }>;
}

export function DevicesScreen() {
  const [prefix, setPrefix] = useState('');
  const result = useLoad(() => get<{ items: Device[] }>(`/v1/devices${query({ hostname: prefix, limit: 100 })}`), [prefix]);
  return (
    <section aria-labelledby="devices-h">
      <h1 id="devices-h">Devices</h1>
      <form
        class="filters"
        role="search"
        onSubmit={(e) => {
          e.preventDefault();
          setPrefix(formText(new FormData(e.currentTarget), 'hostname'));
        }}
      >
        <Field label="Hostname starts with">
          <input name="hostname" type="search" autocomplete="off" defaultValue={prefix} />
        </Field>
        <button type="submit">Find devices</button>
      </form>
      <DeviceList result={result} />
    </section>
  );
}

function DeviceList({ result }: { result: Result<{ items: Device[] }> | null }) {
  if (!result) return <p>Loading devices…</p>;
  if (!result.ok) return <Failure result={result} what="The device list" />;
  return (
    <TableWrap caption="Devices in your scope">
      <thead>
        <tr>
          <th scope="col">Hostname</th>
          <th scope="col">OS</th>
          <th scope="col">Agent</th>
          <th scope="col">Last heartbeat</th>
          <th scope="col">Logged-on user</th>
        </tr>
      </thead>
      <tbody>
        {result.body.items.length === 0 ? (
          <tr>
            <td colSpan={5}>No device found in your scope.</td>
          </tr>
        ) : (
          result.body.items.map((d) => (
            <tr key={d.id}>
              <td>
                <a href={`#/devices/${d.id}`}>{d.hostname}</a>
              </td>
              <td>
                {d.osFamily} {d.osBuild}
              </td>
              <td>{d.agentVersion}</td>
              <td>{when(d.lastHeartbeatAt)}</td>
              <td>{d.loggedOnUser ?? 'nobody'}</td>
            </tr>
          ))
        )}
      </tbody>
    </TableWrap>
  );
}

export function DeviceScreen({ id }: { id: string }) {
  const enc = encodeURIComponent(id);
  const device = useLoad(() => get<Device>(`/v1/devices/${enc}`), [id]);
  const settings = useLoad(() => get<Effective>(`/v1/devices/${enc}/effective-settings`), [id]);
  const access = useLoad(() => get(`/v1/access-review/devices/${enc}`), [id]);
  if (!device) return <p>Loading the device…</p>;
  if (!device.ok) return <Failure result={device} what="This device" />;
  const d = device.body;
  return (
    <article aria-labelledby="device-h">
      <h1 id="device-h">Device {d.hostname}</h1>
      <dl class="facts">
        <dt>FQDN</dt>
        <dd>{d.fqdn ?? '—'}</dd>
        <dt>OS</dt>
        <dd>
          {d.osFamily} {d.osBuild}, {d.domainJoined ? 'domain-joined' : 'workgroup'}
        </dd>
        <dt>Agent</dt>
        <dd>
          {d.agentVersion}, last heartbeat {when(d.lastHeartbeatAt)}
        </dd>
        <dt>Logged-on user</dt>
        <dd>
          {d.loggedOnUser ?? 'nobody'}
          {d.locked ? ' (locked)' : ''}
        </dd>
        <dt>Status</dt>
        <dd>{d.retired ? 'retired' : 'in service'}</dd>
      </dl>

      <section aria-labelledby="access-h">
        <h2 id="access-h">Who can control it</h2>
        <AccessTable
          result={access}
          caption={`Every principal who can start a session on ${d.hostname}, and why`}
          what="The access review"
        />
      </section>

      <section aria-labelledby="settings-h">
        <h2 id="settings-h">Effective remote-tools settings</h2>
        {!settings ? (
          <p>Loading settings…</p>
        ) : !settings.ok ? (
          <Failure result={settings} what="Effective settings" />
        ) : (
          <TableWrap caption="Each setting with the client settings set that supplied it (lowest order wins)">
            <thead>
              <tr>
                <th scope="col">Setting</th>
                <th scope="col">Value</th>
                <th scope="col">From set</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(settings.body.values).map(([k, v]) => {
                const from = settings.body.provenance[k];
                return (
                  <tr key={k}>
                    <td>{k}</td>
                    <td>{show(v)}</td>
                    <td>{from ? `${from.setName} (order ${from.order})` : '—'}</td>
                  </tr>
                );
              })}
            </tbody>
          </TableWrap>
        )}
      </section>

      <section aria-labelledby="device-sessions-h">
        <h2 id="device-sessions-h">Sessions on {d.hostname}</h2>
        <SessionTable filters={{ deviceId: d.id }} caption={`Sessions on ${d.hostname}, newest first`} live={false} />
      </section>
    </article>
  );
}
