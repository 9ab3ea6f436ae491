import { useEffect, useState } from 'preact/hooks';
import type { DeviceRequest, E2eStatus, OwnDevice, SafetyNumber, ThreadJson } from '../../src/client/browser.js';
import { type HistoryOffer, groupsOfFive } from './e2e-model.js';
import type { ChatModel } from './model.js';

/**
 * What the user sees of end-to-end encryption: the banners over the chat
 * (this device waiting for approval, another device asking to join, history
 * handed over, alarms), the lock and verified marks, the safety number, and
 * the warnings in a thread whose contact's identity changed.
 */

/** A fingerprint or safety number as groups of five, the way two people read it to each other. */
function Code({ code, testid }: { code: string; testid: string }) {
  return (
    <p class="code" data-testid={testid}>
      {groupsOfFive(code).map((group, index) => (
        <span key={index}>{group} </span>
      ))}
    </p>
  );
}

export function EncryptionBanners({ model }: { model: ChatModel }) {
  const { e2e } = model;
  return (
    <div class="banners">
      {model.fatal && (
        <section class="banner alarm" role="alert">
          <strong>chatd cannot start on this device</strong>
          <p>{model.fatal}</p>
          <p>The stored keys were left as they are. Log out to start again as a new device (this one's encrypted history is then lost).</p>
          <button type="button" onClick={() => model.logOut()}>Log out</button>
        </section>
      )}
      {e2e.standing === 'pending' && (
        <section class="banner pending-device" role="alert" aria-label="This device waits for approval">
          <strong>This device waits for approval: open chatd on one of your other devices and compare this code</strong>
          {e2e.fingerprint ? <Code code={e2e.fingerprint} testid="own-fingerprint" /> : <p>Making this device's keys…</p>}
          <p>Approve it there if the codes are the same. Until then this device cannot read or send encrypted messages.</p>
          <ResetAccount model={model} lost />
        </section>
      )}
      {/* Only a device that holds the account key can approve another. */}
      {e2e.standing !== 'pending' && [...e2e.requests.values()].map((request) => (
        <DeviceRequestCard key={request.device_id} model={model} request={request} />
      ))}
      {[...e2e.offers].map(([deviceId, offer]) => (
        <HistoryOfferCard key={deviceId} model={model} deviceId={deviceId} offer={offer} />
      ))}
      {[...e2e.incoming.values()].map((received) => {
        const done = received.parts_received >= received.parts;
        return (
          <section key={received.grant_id} class="banner history" role="status" data-testid="history-incoming">
            {done ? (
              <>
                <strong>Message history received: {received.messages} messages</strong>
                <button type="button" class="link" onClick={() => e2e.dismissIncoming(received.grant_id)}>Close</button>
              </>
            ) : (
              <>
                <strong>Receiving your message history from another device</strong>
                <progress value={received.parts_received} max={received.parts} />
                <span>
                  {received.parts_received} of {received.parts} parts, {received.messages} messages
                </span>
              </>
            )}
          </section>
        );
      })}
      {e2e.alarms.map((alarm, index) => (
        <section key={index} class="banner alarm" role="alert">
          <strong>Security warning</strong> <span>{alarm}</span>
          <button type="button" class="link" onClick={() => e2e.dismissAlarm(index)}>Dismiss</button>
        </section>
      ))}
    </div>
  );
}

function DeviceRequestCard({ model, request }: { model: ChatModel; request: DeviceRequest }) {
  return (
    <section class="banner request" role="alert" data-testid="device-request" data-device={request.device_id}>
      <strong>A new device wants to join your account</strong>
      <p>Compare this code with the one the new device shows. Approve only if they are the same: an approved device reads your encrypted chats.</p>
      <Code code={request.fingerprint} testid="request-fingerprint" />
      <div class="buttons">
        <button type="submit" onClick={() => void model.act(() => model.e2e.approve(request), { refresh: false })}>Approve</button>
        <button type="button" onClick={() => void model.act(() => model.e2e.reject(request.device_id), { refresh: false })}>Reject</button>
      </div>
    </section>
  );
}

function HistoryOfferCard({ model, deviceId, offer }: { model: ChatModel; deviceId: number; offer: HistoryOffer }) {
  const { e2e } = model;
  const close = (
    <button type="button" class="link" onClick={() => e2e.dismissOffer(deviceId)}>
      {offer.state === 'offered' ? 'Not now' : 'Close'}
    </button>
  );
  if (offer.state === 'sharing') {
    return (
      <section class="banner history" role="status" data-testid="history-sharing">
        <strong>Sharing your message history with the new device</strong>
        <progress value={offer.part} max={offer.parts || 1} />
        <span>{offer.parts ? `part ${offer.part} of ${offer.parts}` : 'starting…'}</span>
      </section>
    );
  }
  if (offer.state === 'shared') {
    return (
      <section class="banner history" role="status" data-testid="history-shared">
        <strong>History shared: {offer.messages} messages</strong>
        {offer.truncated && <span>(the newest: older ones were left out, there were too many)</span>} {close}
      </section>
    );
  }
  return (
    <section class="banner history" role="status" data-testid="history-offer">
      <strong>The new device is approved.</strong>
      <p>Share your message history with this device? It gets the keys of the encrypted messages this device can read.</p>
      {offer.state === 'failed' && <p class="error">Sharing failed: {offer.error}</p>}
      <div class="buttons">
        <button type="button" onClick={() => void e2e.shareHistory(deviceId, 'all')}>Share your message history with this device</button>
        <button type="button" onClick={() => void e2e.shareHistory(deviceId, 'month')}>Only the last 30 days</button>
        {close}
      </div>
    </section>
  );
}

/** A padlock drawn here rather than an emoji: not every system has an emoji font (headless Chromium has none). */
export function LockMark() {
  return (
    <span class="lock" title="End-to-end encrypted" role="img" aria-label="end-to-end encrypted" data-testid="lock">
      <svg viewBox="0 0 16 16" width="0.85em" height="0.85em" aria-hidden="true">
        <path fill="currentColor" d="M4 7V5a4 4 0 1 1 8 0v2h.5A1.5 1.5 0 0 1 14 8.5v5a1.5 1.5 0 0 1-1.5 1.5h-9A1.5 1.5 0 0 1 2 13.5v-5A1.5 1.5 0 0 1 3.5 7H4zm2 0h4V5a2 2 0 1 0-4 0v2z" />
      </svg>
    </span>
  );
}

export function VerifiedBadge() {
  return (
    <span class="verified" title="Safety number verified" data-testid="verified">
      ✓ verified
    </span>
  );
}

/** The safety number of this user and `userId`, as digits and a QR code, with the verified switch. */
export function SafetyNumberPanel({ model, userId, name, onClose }: { model: ChatModel; userId: number; name: string; onClose: () => void }) {
  const [number, setNumber] = useState<SafetyNumber>();
  const [qr, setQr] = useState<string>();
  const [error, setError] = useState<string>();
  const load = async (): Promise<void> => {
    try {
      const safety = await model.client.safetyNumber(userId);
      setNumber(safety);
      // The QR code library is a chunk of its own: only this panel needs it.
      const { renderSVG } = await import('uqr');
      setQr(renderSVG(safety.qr));
    } catch (failure) {
      // No account key yet: the other person has never used a client that encrypts.
      const noKey = (failure as { code?: string }).code === 'not_found';
      setError(noKey ? `${name} has no device that encrypts yet: there is no safety number until they use one (this web client, or an app with end-to-end encryption).` : (failure as Error).message);
    }
  };
  useEffect(() => {
    void load();
  }, [userId]);
  const setVerified = async (verified: boolean): Promise<void> => {
    if (await model.act(() => (verified ? model.client.markVerified(userId) : model.client.unverify(userId)), { refresh: false })) await load();
  };
  return (
    <div class="safety" role="dialog" aria-label={`Safety number with ${name}`} data-testid="safety-panel">
      <header>
        <strong>Safety number with {name}</strong>
        <button type="button" class="link" onClick={onClose}>Close</button>
      </header>
      {error && <p class="error">{error}</p>}
      {number && (
        <>
          <p>
            Compare these numbers with the ones {name} sees (in person, or on a call you trust), or scan the code. If they are the same, nobody stands between
            you: your messages are readable only by your devices and {name}'s.
          </p>
          <div class="safety-body">
            <p class="safety-number" data-testid="safety-number">
              {groupsOfFive(number.number.replace(/\D/g, '')).map((group, index) => (
                <span key={index}>{group} </span>
              ))}
            </p>
            {qr && <div class="qr" role="img" aria-label="QR code of the safety number" dangerouslySetInnerHTML={{ __html: qr }} />}
          </div>
          {number.verified ? (
            <p>
              <VerifiedBadge /> You verified {name}.{' '}
              <button type="button" onClick={() => void setVerified(false)}>Unverify</button>
            </p>
          ) : (
            <button type="submit" onClick={() => void setVerified(true)}>Mark as verified</button>
          )}
        </>
      )}
    </div>
  );
}

/** Warnings at the end of a thread: members whose safety number changed while the page was open. */
export function IdentityWarnings({ model, thread, onVerify }: { model: ChatModel; thread: ThreadJson; onVerify: (userId: number) => void }) {
  const changed = model.othersIn(thread).filter((userId) => model.e2e.identityChanges.has(userId));
  return (
    <>
      {changed.map((userId) => (
        <li key={`identity-${userId}`} class="identity-warning" role="alert" data-testid="identity-warning">
          ⚠ {model.nameOf(userId)}'s safety number changed. They may have reinstalled chatd or reset their account, or someone may be listening in between.{' '}
          <button type="button" class="link" onClick={() => onVerify(userId)}>Verify safety number</button>
        </li>
      ))}
    </>
  );
}

/** Above the composer: sends wait for contacts whose verified identity changed, until the user accepts or verifies. */
export function HeldNotice({ model, thread, onVerify }: { model: ChatModel; thread: ThreadJson; onVerify: (userId: number) => void }) {
  const held = model.othersIn(thread).filter((userId) => model.e2e.isHeld(userId));
  return (
    <>
      {held.map((userId) => (
        <div key={userId} class="held" role="alert" data-testid="held">
          <p>
            Your messages wait: {model.nameOf(userId)}'s safety number changed since you verified it. They go out once you accept the new one.
          </p>
          <button type="button" onClick={() => void model.act(() => model.e2e.acceptIdentity(userId), { refresh: false })}>Accept the new safety number</button>
          <button type="button" class="link" onClick={() => onVerify(userId)}>Verify</button>
        </div>
      ))}
    </>
  );
}

const PROBLEMS: Record<Exclude<E2eStatus, 'ok'>, string> = {
  undecryptable: 'Not readable on this device: it was not encrypted for it (sent before this device joined, or damaged).',
  bad_signature: '⚠ Not shown: this message failed its authenticity check (forged or altered).',
  unknown_sender: '⚠ Not shown: the device that sent it is unknown, so it cannot be checked.',
  untrusted_sender: '⚠ Not shown: sent from a device its owner has not approved.',
  replayed: '⚠ Not shown: a copy of an earlier message, sent again (replayed).',
};

/** What shows instead of an encrypted message that did not open cleanly (never the raw envelope). */
export function e2eProblem(status: E2eStatus | undefined): string {
  return status === undefined || status === 'ok' ? 'Encrypted message' : PROBLEMS[status];
}

const DEVICE_STATE: Record<OwnDevice['state'], string> = {
  this: 'this browser',
  approved: 'approved',
  pending: 'waiting for approval',
  revoked: 'removed',
};

/**
 * Starting over with a new account key, behind a second click: from a waiting device when every other device
 * is lost, or from an approved one after removing a stolen device.
 */
function ResetAccount({ model, lost = false }: { model: ChatModel; lost?: boolean }) {
  const [asked, setAsked] = useState(false);
  if (!asked) {
    return (
      <button type="button" class="link" onClick={() => setAsked(true)}>
        {lost ? 'I no longer have any of my other devices' : 'Reset the account key'}
      </button>
    );
  }
  const reset = async (event: Event): Promise<void> => {
    event.preventDefault();
    // A waiting device proves it is the user with the password (sent in that one request, never kept).
    const password = lost ? String(new FormData(event.currentTarget as HTMLFormElement).get('password') ?? '') : undefined;
    if (await model.act(() => model.e2e.resetAccount(password), { refresh: false })) setAsked(false);
  };
  return (
    <form class="reset" aria-label="Reset the account key" onSubmit={(event) => void reset(event)}>
      <p>
        {lost
          ? 'This device can start over with a new account key and become your account’s device. '
          : 'Do this after removing a stolen device: a new account key, made on this browser. '}
        Your other devices then wait for approval again (they may need to log in again), your contacts see a new safety number, and whoever had
        verified you must accept it.
      </p>
      {model.error && <p class="error" role="alert">{model.error}</p>}
      {lost && (
        <label>
          Your password <input name="password" type="password" autocomplete="current-password" required />
        </label>
      )}
      <div class="buttons">
        <button type="submit">Start over with a new account key</button>
        <button type="button" class="link" onClick={() => setAsked(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** This user's devices with their codes; any but this one can be removed (a lost phone, say). */
export function DevicesPanel({ model }: { model: ChatModel }) {
  const [devices, setDevices] = useState<OwnDevice[]>();
  const load = (): Promise<boolean> => model.act(async () => setDevices(await model.client.devices()), { refresh: false });
  useEffect(() => {
    void load();
  }, []);
  if (!devices) return <p class="devices">Loading devices…</p>;
  return (
    <ul class="devices" aria-label="Your devices">
      {devices
        .filter((device) => device.state !== 'revoked')
        .map((device) => (
          <li key={device.device_id} class="device" data-device={device.device_id}>
            <span>
              Device {device.device_id} · {DEVICE_STATE[device.state]}
            </span>
            <small class="code-inline">{groupsOfFive(device.fingerprint).join(' ')}</small>
            {device.state !== 'this' && model.e2e.standing !== 'pending' && (
              <button type="button" class="link" onClick={() => void model.act(() => model.e2e.reject(device.device_id), { refresh: false }).then(load)}>
                Remove
              </button>
            )}
          </li>
        ))}
      {model.e2e.standing !== 'pending' && (
        <li>
          <ResetAccount model={model} />
        </li>
      )}
    </ul>
  );
}
