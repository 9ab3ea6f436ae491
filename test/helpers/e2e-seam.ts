import type { AccountKeyJson, DeviceKeysJson, DeviceMessageJson } from '../../src/protocol/frames.js';
import { type Call, E2eSession } from '../../src/client/e2e.js';
import type { AccountStanding, DeviceRequest, IdentityChange, KeyChange } from '../../src/client/e2e-types.js';
import { ClientError } from '../../src/client/errors.js';
import type { RequestJson } from '../../src/client/requests.js';
import { MemoryStore } from '../../src/client/store.js';

/**
 * A key server at E2eSession's seam (the `call` it is given), honest by
 * default, that a test can turn malicious: `tamper` rewrites every `keys`
 * reply, and the maps can be edited directly (what an operator with the
 * database could do). No crypto checks: the client must not rely on any.
 */
export class FakeKeyServer {
  readonly accounts = new Map<number, AccountKeyJson>();
  readonly devices = new Map<number, DeviceKeysJson>();
  readonly threads = new Map<number, number[]>();
  readonly queues = new Map<number, DeviceMessageJson[]>();
  readonly requests: Array<{ device: number; request: RequestJson }> = [];
  readonly sessions = new Map<number, E2eSession>();
  /** Rewrites the `keys` replies (a malicious server). */
  tamper: (reply: { accounts: AccountKeyJson[]; devices: DeviceKeysJson[] }, deviceId: number) => { accounts: AccountKeyJson[]; devices: DeviceKeysJson[] } = (reply) => reply;
  private nextMessage = 1;

  callFor(userId: number, deviceId: number): Call {
    return (async (request: RequestJson) => {
      this.requests.push({ device: deviceId, request });
      return this.handle(userId, deviceId, request);
    }) as Call;
  }

  /** Every visible device's keys, as `keys_get` with no list answers (self + anyone sharing a thread: here, everyone). */
  keysReply(deviceId: number, userIds?: readonly number[]): { type: 'keys'; id: string; accounts: AccountKeyJson[]; devices: DeviceKeysJson[] } {
    const wanted = (userId: number): boolean => !userIds || userIds.includes(userId);
    const reply = {
      accounts: [...this.accounts.values()].filter((entry) => wanted(entry.user_id)),
      devices: [...this.devices.values()].filter((device) => wanted(device.user_id)),
    };
    return { type: 'keys', id: '1', ...this.tamper(structuredClone(reply), deviceId) };
  }

  /** Sends `keys_changed` for a device to every session (as the server's fanout would). */
  announce(deviceId: number): void {
    const keys = this.devices.get(deviceId);
    if (keys) for (const session of this.sessions.values()) session.event({ type: 'keys_changed', ...keys });
  }

  private handle(userId: number, deviceId: number, request: RequestJson): unknown {
    switch (request.type) {
      case 'keys_get':
        return this.keysReply(deviceId, request.user_ids);
      case 'keys_publish': {
        const { type: _type, ...keys } = request;
        const before = this.devices.get(deviceId);
        this.devices.set(deviceId, { user_id: userId, device_id: deviceId, ...keys, account_signature: keys.account_signature ?? before?.account_signature ?? null, revoked: false });
        setImmediate(() => this.announce(deviceId));
        return { type: 'ok', id: '1' };
      }
      case 'account_publish': {
        const existing = this.accounts.get(userId);
        if (existing && existing.account_key !== request.account_key && !request.reset) throw new ClientError('key_conflict', 'another account key exists', false);
        const entry = { user_id: userId, account_key: request.account_key, signature: request.signature };
        this.accounts.set(userId, entry);
        if (existing && existing.account_key !== request.account_key) {
          // A reset: every device of the user is pending again; account_changed, then keys_changed for each, fan out.
          const own = [...this.devices.values()].filter((device) => device.user_id === userId);
          for (const device of own) this.devices.set(device.device_id, { ...device, account_signature: null });
          setImmediate(() => {
            for (const session of this.sessions.values()) session.event({ type: 'account_changed', ...entry });
            for (const device of own) this.announce(device.device_id);
          });
        }
        return { type: 'ok', id: '1' };
      }
      case 'device_approve': {
        const device = this.devices.get(request.device_id);
        if (!device || device.user_id !== userId) throw new ClientError('not_found', 'no such device', false);
        this.devices.set(request.device_id, { ...device, account_signature: request.account_signature });
        setImmediate(() => this.announce(request.device_id));
        return { type: 'ok', id: '1' };
      }
      case 'device_send': {
        const message = { id: this.nextMessage++, from_device: deviceId, payload: request.payload, created_at: Date.now() };
        const queue = this.queues.get(request.device_id) ?? [];
        queue.push(message);
        this.queues.set(request.device_id, queue);
        setImmediate(() => this.sessions.get(request.device_id)?.event({ type: 'device_message', message }));
        return { type: 'ok', id: '1' };
      }
      case 'device_messages':
        return { type: 'device_messages', id: '1', messages: (this.queues.get(deviceId) ?? []).filter((m) => m.id > request.after), more: false };
      case 'device_messages_ack':
        this.queues.set(deviceId, (this.queues.get(deviceId) ?? []).filter((m) => m.id > request.up_to));
        return { type: 'ok', id: '1' };
      case 'thread_get':
        return { type: 'thread', id: '1', thread: { id: request.thread_id }, members: (this.threads.get(request.thread_id) ?? []).map((id) => ({ user: { id } })) };
      default:
        throw new Error(`the fake key server does not do ${request.type}`);
    }
  }
}

/** One device's E2eSession with everything it emits recorded. */
export interface SeamDevice {
  readonly session: E2eSession;
  readonly store: MemoryStore;
  readonly userId: number;
  readonly deviceId: number;
  readonly keys: KeyChange[];
  readonly identities: IdentityChange[];
  readonly requests: DeviceRequest[];
  readonly standings: AccountStanding[];
  readonly errors: unknown[];
  readonly call: Call;
}

export async function seamDevice(
  server: FakeKeyServer,
  userId: number,
  deviceId: number,
  options: { store?: MemoryStore; always?: boolean; connect?: boolean } = {},
): Promise<SeamDevice> {
  const store = options.store ?? new MemoryStore();
  const recorded = { keys: [] as KeyChange[], identities: [] as IdentityChange[], requests: [] as DeviceRequest[], standings: [] as AccountStanding[], errors: [] as unknown[] };
  const call = server.callFor(userId, deviceId);
  const session = new E2eSession({
    store,
    call,
    revokeDevice: async (id) => {
      const device = server.devices.get(id);
      if (device) server.devices.set(id, { ...device, revoked: true });
    },
    events: {
      keys: (change) => recorded.keys.push(change),
      identity: (change) => recorded.identities.push(change),
      deviceRequest: (request) => recorded.requests.push(request),
      account: (standing) => recorded.standings.push(standing),
      error: (error) => recorded.errors.push(error),
    },
    always: options.always === true,
    oldKeysTtlMs: 30 * 24 * 3600 * 1000,
  });
  session.load((await store.load()).e2e);
  server.sessions.set(deviceId, session);
  if (options.connect !== false) await session.connected(userId, deviceId, call);
  return { session, store, userId, deviceId, call, ...recorded };
}

/** Lets the fake server's deferred events (setImmediate) run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(() => setImmediate(resolve)));
}

/** The envelope of a message sealed by `device` to thread `threadId` (waiting out fetches and holds). */
export async function sealed(device: SeamDevice, threadId: number, clientMsgId: string, body: unknown): Promise<unknown> {
  const entry = { client_msg_id: clientMsgId, thread_id: threadId, kind: 'e2e' as const, body, created_at: 0 };
  for (let attempt = 0; attempt < 5; attempt++) {
    const result = device.session.seal(entry);
    if ('body' in result) return result.body;
    await result.wait;
  }
  throw new Error('never sealed');
}
