import { useEffect, useState } from 'preact/hooks';
import type { DeviceJson } from '../../src/client/browser.js';
import type { ChatModel } from './model.js';

/**
 * The account's own settings: display name, password, notifications and
 * sound, and where the account is logged in (each device but this one can
 * be logged out from here; this one logs out with "Log out").
 */
export function SettingsPanel({ model }: { model: ChatModel }) {
  return (
    <section class="settings" aria-label="Settings">
      <DisplayNameForm model={model} />
      <PasswordForm model={model} />
      <AlertSettings model={model} />
      <LoginDevices model={model} />
    </section>
  );
}

/** A form's outcome line: what was done, or why not. */
function Outcome({ result }: { result: { ok: boolean; text: string } | undefined }) {
  if (!result) return null;
  return (
    <p class={result.ok ? 'saved' : 'error'} role={result.ok ? 'status' : 'alert'}>
      {result.text}
    </p>
  );
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function DisplayNameForm({ model }: { model: ChatModel }) {
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  const save = async (event: Event): Promise<void> => {
    event.preventDefault();
    const name = String(new FormData(event.currentTarget as HTMLFormElement).get('display_name') ?? '');
    setBusy(true);
    try {
      const { user } = await model.client.api.updateMe({ display_name: name });
      model.renamed(user);
      setResult({ ok: true, text: `Your name is now “${user.display_name}”.` });
    } catch (error) {
      setResult({ ok: false, text: messageOf(error) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="setting" onSubmit={save}>
      <h3>Your name</h3>
      <label>
        Display name <input name="display_name" defaultValue={model.session.user.display_name} maxLength={64} required autocomplete="name" />
      </label>
      <p class="hint">Others see it beside your messages; your username @{model.session.user.username} stays.</p>
      <button type="submit" disabled={busy}>Save name</button>
      <Outcome result={result} />
    </form>
  );
}

function PasswordForm({ model }: { model: ChatModel }) {
  const [result, setResult] = useState<{ ok: boolean; text: string }>();
  const [busy, setBusy] = useState(false);
  const change = async (event: Event): Promise<void> => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const data = new FormData(form);
    setBusy(true);
    try {
      const { revoked_devices: revoked } = await model.client.api.changePassword({
        current_password: String(data.get('current_password') ?? ''),
        new_password: String(data.get('new_password') ?? ''),
        revoke_other_devices: data.get('revoke') === 'on',
      });
      form.reset();
      setResult({ ok: true, text: revoked > 0 ? `Password changed; ${revoked} other ${revoked === 1 ? 'device was' : 'devices were'} logged out.` : 'Password changed.' });
    } catch (error) {
      setResult({ ok: false, text: messageOf(error) });
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="setting" onSubmit={change}>
      <h3>Password</h3>
      <label>
        Current password <input name="current_password" type="password" autocomplete="current-password" required />
      </label>
      <label>
        New password <input name="new_password" type="password" autocomplete="new-password" required />
      </label>
      <label class="check">
        <input name="revoke" type="checkbox" defaultChecked /> Log out my other devices
      </label>
      <button type="submit" disabled={busy}>Change password</button>
      <Outcome result={result} />
    </form>
  );
}

const PERMISSION_TEXT: Record<string, string> = {
  granted: 'On: a notification comes when a message arrives while chatd is in the background.',
  denied: 'Blocked in this browser: allow notifications for this site in the browser’s site settings.',
  default: 'Off.',
  unsupported: 'This browser cannot show notifications.',
};

function AlertSettings({ model }: { model: ChatModel }) {
  const { attention } = model;
  const permission = attention.permission();
  return (
    <div class="setting">
      <h3>Notifications</h3>
      <p data-testid="notification-state">{PERMISSION_TEXT[permission]}</p>
      {permission === 'default' && (
        <button type="button" onClick={() => void attention.askPermission()}>
          Turn on notifications
        </button>
      )}
      {permission === 'granted' && <BackgroundPushState model={model} />}
      <label class="check">
        <input type="checkbox" checked={attention.sound} onChange={(event) => attention.setSound(event.currentTarget.checked)} /> Play a sound with each notification
      </label>
      <p class="hint">Muted chats notify only for a message that mentions you. The tab’s title and icon show how many messages are unread.</p>
    </div>
  );
}

/** Whether notifications also come while no chatd tab is open (Web Push, background-push.ts). */
function BackgroundPushState({ model }: { model: ChatModel }) {
  const { state } = model.push;
  const text =
    state.kind === 'on'
      ? 'Background notifications are on: they come even while chatd is closed.'
      : state.kind === 'unavailable'
        ? `Background notifications are not available in this browser: ${state.why}. Notifications still come while chatd is open in a tab.`
        : state.kind === 'server_off'
          ? 'This server does not send background notifications. Notifications come while chatd is open in a tab.'
          : state.kind === 'starting'
            ? 'Turning on background notifications…'
            : undefined;
  if (!text) return null;
  return (
    <p data-testid="background-push" data-state={state.kind}>
      {text}
    </p>
  );
}

function LoginDevices({ model }: { model: ChatModel }) {
  const [devices, setDevices] = useState<DeviceJson[]>();
  const [error, setError] = useState<string>();
  const load = async (): Promise<void> => {
    try {
      setDevices((await model.client.api.devices()).devices);
      setError(undefined);
    } catch (failure) {
      setError(messageOf(failure));
    }
  };
  useEffect(() => {
    void load();
  }, []);
  const logOut = async (device: DeviceJson): Promise<void> => {
    if (!window.confirm(`Log out “${device.name}”? It will need the password to log in again.`)) return;
    try {
      await model.client.api.removeDevice(device.id);
    } catch (failure) {
      setError(messageOf(failure));
    }
    await load();
  };
  return (
    <div class="setting">
      <h3>Where you’re logged in</h3>
      {error && <p class="error" role="alert">{error}</p>}
      {!devices ? (
        <p>Loading…</p>
      ) : (
        <ul class="login-devices" aria-label="Logged-in devices">
          {devices.map((device) => (
            <li key={device.id} data-device={device.id} class={device.current ? 'current' : undefined}>
              <span class="device-name">
                {device.name} {device.current && <strong class="this-device">This device</strong>}
              </span>
              <small>
                {device.platform} · {device.last_seen_at === null ? 'never seen' : `last active ${when(device.last_seen_at)}`}
              </small>
              {device.current ? (
                <button type="button" class="link" onClick={() => model.logOut()}>
                  Log out
                </button>
              ) : (
                <button type="button" class="link" onClick={() => void logOut(device)}>
                  Log out this device
                </button>
              )}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

function when(ms: number): string {
  const date = new Date(ms);
  const today = new Date().toDateString() === date.toDateString();
  const time = date.toLocaleTimeString([], { hour: 'numeric', minute: '2-digit' });
  return today ? `today at ${time}` : `${date.toLocaleDateString([], { day: 'numeric', month: 'short', year: 'numeric' })} at ${time}`;
}
