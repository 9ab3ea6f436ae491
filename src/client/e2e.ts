import type {
  AccountChangedEvent, AccountKeyJson, DeviceKeysJson, DeviceMessageEvent, KeysChangedEvent, MessageJson, ThreadJson,
} from '../protocol/frames.js';
import type { Call } from './connection.js';
import { DeviceApprovals } from './device-approvals.js';
import { DeviceDirectory } from './device-directory.js';
import { DeviceMailbox } from './device-mailbox.js';
import { DeviceMessageLog } from './device-message-log.js';
import type { E2eState } from './e2e-records.js';
import type {
  AccountStanding, ClientMessage, DeviceFingerprint, DeviceRequest, IdentityChange, KeyChange, OwnDevice as OwnDeviceInfo, SafetyNumber,
} from './e2e-types.js';
import { type Recipient, sealEnvelope } from './envelope.js';
import { ClientError } from './errors.js';
import { HistoryKeys, type HistoryHost, type HistoryModule } from './history-hook.js';
import { Identities } from './identities.js';
import { Latches } from './latch.js';
import { MessageOpener } from './message-opener.js';
import { isTransient } from './ordered-delivery.js';
import { OwedGrants } from './owed-grants.js';
import { OwnDevice } from './own-device.js';
import { ReplayGuard } from './replay-guard.js';
import { type Sodium, loadSodium } from './sodium.js';
import type { ClientStore, OutboxEntry } from './store.js';
import { ThreadEncryptionPolicy } from './thread-encryption.js';

export type { Call };

/** What the session tells the client (and the client the app). */
export interface E2eEvents {
  readonly keys: (change: KeyChange) => void;
  readonly identity: (change: IdentityChange) => void;
  readonly deviceRequest: (request: DeviceRequest) => void;
  readonly account: (standing: AccountStanding) => void;
  /** Alarms (ClientError `key_mismatch`, `untrusted_devices`, `encryption_downgrade`) and problems worked around. */
  readonly error: (error: unknown) => void;
}

export interface E2eSessionOptions {
  readonly store: ClientStore;
  /** The client's request path (waits for a connection). */
  readonly call: Call;
  /** Revokes one of this user's devices (the HTTP API). */
  readonly revokeDevice: (deviceId: number) => Promise<void>;
  readonly events: E2eEvents;
  /** `encryption: 'always'`. */
  readonly always: boolean;
  readonly oldKeysTtlMs: number;
}

/** The alarm for a reset of this user's account key that this device did not make. */
function accountResetAlarm(): ClientError {
  return new ClientError(
    'account_reset',
    'this account\'s key was reset by another device (or the server says so): this device dropped the old account key and waits, pending, until one of your approved devices approves it again. If you did not reset it, someone else may control your account: revoke the devices you do not know',
    false,
  );
}

/** keys_get takes at most 1,000 users a request. */
const KEYS_PER_REQUEST = 1000;

/**
 * End-to-end encryption for one client (docs/e2e.md): this device's keys and
 * standing (OwnDevice), who is trusted (DeviceDirectory), which threads stay
 * encrypted (ThreadEncryptionPolicy), device messages (DeviceMailbox); here:
 * sealing the outbox's messages, opening received ones, and the app's calls.
 */
export class E2eSession {
  private sodium: Sodium | undefined;
  private own: OwnDevice | undefined;
  private directory: DeviceDirectory | undefined;
  private mailbox: DeviceMailbox | undefined;
  private opener: MessageOpener | undefined;
  /** Takes `history` device messages (history-hook.ts), once attached. */
  private historyModule: HistoryModule | undefined;
  private readonly policy: ThreadEncryptionPolicy;
  private readonly replays = new ReplayGuard();
  private readonly historyKeys: HistoryKeys;
  /** Device messages handled here, by signed id: replays are not handled twice. */
  private readonly deviceLog: DeviceMessageLog;
  /** Account-key grants for devices approved here that have not reached the server yet. */
  private readonly owed: OwedGrants;
  private stored: E2eState = {};
  /** Settles once this connection's keys are settled and the directory loaded. */
  private ready: Promise<void> | undefined;
  private settled = false;
  /** resetAccount({ password }) went through while keys were not settled: the next settling reports `created`. */
  private resetBeforeSettled = false;
  private standing: AccountStanding['state'] | undefined;
  /** A check of this user's account key after the server reported another one (ownAccountReported); settled when none runs. */
  private ownCheck: Promise<void> = Promise.resolve();
  /** Per thread, its members (from thread_get), until the server says they changed. */
  private readonly members = new Map<number, ReadonlySet<number>>();
  /** Sends waiting for `acceptIdentity`, per held user id. */
  private readonly holds = new Latches<number>();
  /** Sends of a pending device, waiting for its approval. */
  private readonly approval = new Latches<'approved'>();

  constructor(private readonly options: E2eSessionOptions) {
    this.policy = new ThreadEncryptionPolicy(options.store, options.always, options.events.error);
    this.historyKeys = new HistoryKeys(options.store, options.events.error);
    this.deviceLog = new DeviceMessageLog(options.store);
    this.owed = new OwedGrants(options.store);
  }

  /** The store's encryption fields, at start. */
  load(state: E2eState): void {
    this.stored = state;
    this.policy.load(state.e2eThreads);
    this.historyKeys.load(state.historyKeys);
    this.deviceLog.load(state.deviceMessagesSeen);
    this.owed.load(state.owedGrants);
  }

  /**
   * After `welcome`: this device's keys and standing settled and the
   * directory loaded (what the returned promise waits for); then, not waited
   * for, device messages drained and owed account-key grants sent again.
   */
  connected(userId: number, deviceId: number, call: Call): Promise<void> {
    this.settled = false;
    // One at a time: a reconnect while the last connect still settles keys must not make a second account key.
    const previous = this.ready?.catch(() => undefined);
    this.ready = (async () => {
      await previous;
      const { own, directory } = await this.parts();
      const mine = await call({ type: 'keys_get', user_ids: [userId] });
      const vouching = own.vouchingKey;
      const vouched = vouching ? directory.approvedUnder(userId, vouching) : [];
      const established = await own.establish(call, userId, deviceId, mine, vouched);
      const { replaced } = established;
      // A reset with the password made before keys were settled (resetAccount) is reported as made here.
      const state = this.resetBeforeSettled ? 'created' : established.state;
      this.resetBeforeSettled = false;
      directory.setSelf(own.self(), own.accountKey, own.approved);
      if (replaced) this.options.events.error(accountResetAlarm());
      const all = await call({ type: 'keys_get' });
      this.learn(all.accounts, all.devices);
      // Thread membership may have changed while away.
      this.members.clear();
      this.settled = true;
      // After a reset (made here or seen) the standing is reported again even when its name did not change.
      if (replaced || state === 'created') this.standing = undefined;
      this.setStanding(state);
    })();
    // Failures surface where the keys are needed (send, open); here only reported.
    this.ready.catch(this.options.events.error);
    // After ready, not inside it: sends and opens do not wait for a long queue. A device
    // message that cannot be had now is fetched again at the next connect.
    const ready = this.ready;
    void ready.then(async () => {
      await (this.mailbox as DeviceMailbox).drain(call).catch(this.options.events.error);
      if (this.ready !== ready || this.owed.list().length === 0) return;
      const approvals = await this.approvals();
      await this.owed.retry((deviceId) => approvals.deliver(deviceId), this.options.events.error);
    }, () => undefined);
    return this.ready;
  }

  /** A `keys_changed`, `account_changed` or `device_message` event. */
  event(event: KeysChangedEvent | AccountChangedEvent | DeviceMessageEvent): void {
    const { directory, mailbox } = this;
    if (!directory || !mailbox || !this.settled) {
      // Before the directory is loaded: the keys_get of connected() brings the same news; device messages are drained.
      return;
    }
    if (event.type === 'device_message') return mailbox.live(this.options.call, event.message);
    if (event.type === 'account_changed') {
      const { type: _type, ...entry } = event;
      const own = this.own;
      if (entry.user_id === own?.user && entry.account_key === own.accountKey && own.approved) {
        // The server set the key this device holds (again: another device undid a rollback with a reset), which
        // cleared every certificate: this device's is published again (the same keys again are a no-op).
        own.publish(this.options.call).catch(this.options.events.error);
        return;
      }
      if (entry.user_id === own?.user) return this.ownAccountReported(entry);
      directory.learnAccount(entry);
    } else {
      const { type: _type, ...keys } = event;
      directory.learnDevice(keys);
      // An own device approved: a message from it that waited for that is handled now.
      if (keys.user_id === this.own?.user) mailbox.retryBlocked(this.options.call).catch(this.options.events.error);
    }
    this.afterLearning();
  }

  // ---- threads ----

  /** Whether a send to this thread must be encrypted (required, ever seen encrypted, or `always`). */
  mustEncrypt(threadId: number, thread: ThreadJson | undefined): boolean {
    return this.policy.mustEncrypt(threadId, thread);
  }

  /** The app sends an encrypted message to the thread: it never gets plaintext again (sticky from the send, not the seal). */
  encryptedSend(threadId: number): void {
    this.policy.encrypted(threadId);
  }

  /** The server's view of a thread: remembered when it requires encryption; a requirement that went away is an alarm. */
  threadSeen(thread: ThreadJson): void {
    this.policy.seen(thread);
  }

  // ---- sending ----

  /**
   * The envelope for an outbox entry: sealed to this device and every trusted
   * device of the thread's members that the server lists. A wait instead while
   * the thread's devices are fetched, or while a member's changed identity
   * waits for `acceptIdentity`.
   */
  seal(entry: OutboxEntry): { body: unknown } | { wait: Promise<void> } {
    const { own, directory, sodium } = this;
    const members = this.members.get(entry.thread_id);
    if (!own || !directory || !sodium || !this.settled || !members) return { wait: this.refreshThread(entry.thread_id) };
    // A device waiting for approval sends nothing: its messages would read `untrusted_sender` everywhere.
    if (!own.approved) return { wait: this.approval.wait('approved') };
    const held = [...members].filter((userId) => directory.isHeld(userId));
    if (held.length > 0) return { wait: Promise.all(held.map((userId) => this.holds.wait(userId))).then(() => undefined) };
    const self = own.self();
    const recipients: Recipient[] = [{ device_id: self.device_id, encKey: own.encKey() }];
    for (const device of directory.reportedFor(members)) {
      if (device.device_id === self.device_id) continue;
      const encKey = directory.sealKey(device.device_id);
      if (encKey) recipients.push({ device_id: device.device_id, encKey });
    }
    // An edit is bound to the edited message's client_msg_id (seal_as): the server shows it as that message's body.
    const binding = { thread_id: entry.thread_id, client_msg_id: entry.seal_as ?? entry.client_msg_id, sender_user_id: self.user_id };
    const body = sealEnvelope(sodium, { device_id: self.device_id, signSecret: own.signSecret() }, binding, entry.body, recipients);
    this.policy.encrypted(entry.thread_id);
    return { body };
  }

  /**
   * Fetches the thread's members and their keys again (the server said its
   * devices changed). With the server's refusal: rejects with
   * `untrusted_devices` (and reports it) when the server insists on devices
   * this client will not seal to, so the message fails instead of looping.
   */
  refreshThread(threadId: number, refusal?: ClientError): Promise<void> {
    this.members.delete(threadId);
    return (async () => {
      await this.whenReady();
      const directory = this.directory as DeviceDirectory;
      const { members } = await this.options.call({ type: 'thread_get', thread_id: threadId });
      const userIds = members.map((member) => member.user.id);
      for (let from = 0; from < userIds.length; from += KEYS_PER_REQUEST) {
        const slice = userIds.slice(from, from + KEYS_PER_REQUEST);
        const reply = await this.options.call({ type: 'keys_get', user_ids: slice });
        this.learn(reply.accounts, reply.devices, slice);
      }
      this.members.set(threadId, new Set(userIds));
      const selfId = this.own?.deviceId;
      // A device of a held user (a verified contact whose account key changed) is not refused here: seal() holds the
      // send until acceptIdentity, as it would have without devices_changed.
      const held = (id: number): boolean => {
        const owner = directory.reportOf(id)?.user_id;
        return owner !== undefined && directory.isHeld(owner);
      };
      const untrusted = (refusal?.details?.missing_devices ?? []).filter((id) => id !== selfId && !directory.isTrusted(id) && !held(id));
      if (untrusted.length > 0) {
        const error = new ClientError(
          'untrusted_devices',
          `the server insists on sealing thread ${threadId}'s message to device(s) ${untrusted.join(', ')}, which are not approved by their owner's pinned account key (or revoked, or with refused keys): not sent`,
          false,
        );
        this.options.events.error(error);
        throw error;
      }
    })();
  }

  // ---- receiving ----

  /** Decrypts and verifies an e2e message now, if this device is ready and knows the sender; undefined otherwise. */
  openNow(message: MessageJson, editOf?: { readonly client_msg_id: string }): ClientMessage | undefined {
    const opener = this.opener;
    if (!this.settled || !opener || !opener.knowsSender(message)) return undefined;
    return opener.open(message, editOf);
  }

  /**
   * Decrypts and verifies an e2e message (fetching the sender's keys when
   * unknown). Rejects when that could not be done for a reason of the
   * connection's own (it dropped while keys settled, a fetch timed out): the
   * message is then given again later, not marked. A server's error reply marks it.
   */
  async open(message: MessageJson, editOf?: { readonly client_msg_id: string }): Promise<ClientMessage> {
    try {
      await this.whenReady();
    } catch (error) {
      if (isTransient(error)) throw error;
      return { ...message, e2e: { status: 'unknown_sender', fingerprint: undefined } };
    }
    const opener = this.opener as MessageOpener;
    if (!opener.knowsSender(message)) {
      let reply;
      try {
        reply = await this.options.call({ type: 'keys_get', user_ids: [message.sender_id] });
      } catch (error) {
        // Only this connection's own failure holds the message back: a server's error reply (internal, rate_limited…)
        // would come again on the next connection, so the message is marked now (unknown_sender) instead.
        if (isTransient(error)) throw error;
        this.options.events.error(error);
      }
      if (reply) this.learn(reply.accounts, reply.devices, [message.sender_id]);
    }
    return opener.open(message, editOf);
  }

  // ---- this user's devices ----

  async devices(): Promise<OwnDeviceInfo[]> {
    return (await this.approvals()).list();
  }

  async approveDevice(deviceId: number, fingerprint: string): Promise<void> {
    return (await this.approvals()).approve(deviceId, fingerprint);
  }

  async rejectDevice(deviceId: number): Promise<void> {
    if (deviceId === this.own?.deviceId) throw new ClientError('invalid_field', 'this is the device itself: log out instead', false);
    await this.options.revokeDevice(deviceId);
  }

  ownFingerprint(): string {
    if (!this.own?.deviceId || !this.settled) throw new ClientError('disconnected', 'the fingerprint is known once the client has connected', true);
    return this.own.fingerprint();
  }

  /** A new encryption key for this device, certified and published; resolves with its fingerprint (unchanged: the identity stays). */
  async rotate(): Promise<string> {
    await this.whenReady();
    const own = this.own as OwnDevice;
    await own.rotate();
    (this.directory as DeviceDirectory).setSelf(own.self(), own.accountKey, own.approved);
    await own.publish(this.options.call);
    return own.fingerprint();
  }

  /**
   * Replaces this user's account key with a new one made here (docs/e2e.md,
   * "Resetting the account key"): every other device of the user is pending
   * until approved again (they are announced as `device_request`), and every
   * contact sees `identity` `changed`. This device stays approved (`account`
   * `created`).
   */
  async resetAccount(options: { readonly password?: string } = {}): Promise<void> {
    try {
      await this.whenReady();
    } catch (error) {
      // With the password a reset is how a device whose keys cannot be settled (its account lost to a reset it
      // cannot follow) gets out: it needs only this device's own keys, not a settled connection.
      if (options.password === undefined || !this.own?.deviceId || !this.directory) throw error;
    }
    const own = this.own as OwnDevice;
    const directory = this.directory as DeviceDirectory;
    await this.ownCheck;
    await own.resetAccount(this.options.call, options);
    if (!this.settled) {
      // Settled afresh under the new key (keys published, the directory loaded, device messages drained).
      this.resetBeforeSettled = true;
      await this.connected(own.user, own.deviceId as number, this.options.call);
      return;
    }
    directory.setSelf(own.self(), own.accountKey, own.approved);
    // Own devices certified by the old key are judged anew: pending, asked about.
    directory.announcePending();
    this.standing = undefined;
    this.setStanding('created');
  }

  // ---- other users (identities.ts) ----

  async safetyNumber(userId: number): Promise<SafetyNumber> {
    return (await this.identities()).safetyNumber(userId);
  }

  async verifyQr(userId: number, scanned: string): Promise<boolean> {
    return (await this.identities()).verifyQr(userId, scanned);
  }

  async markVerified(userId: number, verified: boolean): Promise<void> {
    return (await this.identities()).markVerified(userId, verified);
  }

  async fingerprints(userId: number): Promise<DeviceFingerprint[]> {
    return (await this.identities()).fingerprints(userId);
  }

  /** Takes a held contact's new account key: their sends go out. */
  async acceptIdentity(userId: number): Promise<void> {
    await this.whenReady();
    (this.directory as DeviceDirectory).acceptIdentity(userId);
    this.afterLearning();
  }

  private async approvals(): Promise<DeviceApprovals> {
    await this.whenReady();
    const own = this.own as OwnDevice;
    return new DeviceApprovals(this.sodium as Sodium, own, this.directory as DeviceDirectory, this.mailbox as DeviceMailbox, this.options.call, async () => {
      const reply = await this.options.call({ type: 'keys_get', user_ids: [own.user] });
      this.learn(reply.accounts, reply.devices, [own.user]);
    }, this.owed);
  }

  private async identities(): Promise<Identities> {
    await this.whenReady();
    return new Identities(this.sodium as Sodium, this.own as OwnDevice, this.directory as DeviceDirectory, async (userIds) => {
      const reply = await this.options.call({ type: 'keys_get', user_ids: userIds });
      this.learn(reply.accounts, reply.devices, userIds);
    });
  }

  // ---- history (history-hook.ts) ----

  /** Plugs a history module in: it gets what it needs of this session, and the `history` device messages. */
  attachHistory(module: HistoryModule): HistoryHost {
    this.historyModule = module;
    this.mailbox?.handle('history', (from, body) => module.receive(from, body));
    // History messages that waited for a module are handled now.
    if (this.settled) this.mailbox?.retryBlocked(this.options.call).catch(this.options.events.error);
    return {
      ready: () => this.whenReady(),
      messageKey: (message) => (this.settled ? this.opener?.keyOf(message) : undefined),
      addHistoryKeys: (keys) => this.historyKeys.add(keys),
      sendDeviceMessage: async (toDevice, body) => {
        await this.whenReady();
        await (this.mailbox as DeviceMailbox).send(this.options.call, toDevice, 'history', body);
      },
      isApprovedOwnDevice: (deviceId) => this.own !== undefined && this.directory?.signer(deviceId)?.user_id === this.own.user && this.directory.isTrusted(deviceId),
      grants: () => this.stored.grants ?? {},
      setGrants: (grants) => {
        this.stored = { ...this.stored, grants };
        return this.options.store.setE2e('grants', grants);
      },
    };
  }

  // ---- plumbing ----

  /** A `keys` reply for `userIds` (all visible users when absent). */
  private learn(accounts: readonly AccountKeyJson[], devices: readonly DeviceKeysJson[], userIds?: readonly number[]): void {
    const directory = this.directory as DeviceDirectory;
    // Account keys first: a device is judged by its owner's pinned account key.
    for (const entry of accounts) {
      if (entry.user_id === this.own?.user) this.ownAccountReported(entry);
      else directory.learnAccount(entry);
    }
    for (const keys of devices) directory.learnDevice(keys);
    const named = new Set(userIds ? accounts.filter((entry) => userIds.includes(entry.user_id)).map((entry) => entry.user_id) : []);
    directory.listedFor(userIds ? new Set(userIds) : 'all', new Set(devices.map((keys) => keys.device_id)), named);
    this.afterLearning();
  }

  /**
   * The server reports an account key for this user. Another one than this
   * device holds means a reset this device did not make (or a server saying
   * so): confirmed with a fresh keys_get (an event may be a stale echo of an
   * earlier key), then this device drops the old key and is pending again,
   * with the `account_reset` alarm (OwnDevice.followReset) — unless the key
   * is one this device held before (a rollback: the current key is published
   * again) or the one it held until a reset it followed (taken back).
   */
  private ownAccountReported(entry: AccountKeyJson): void {
    const own = this.own;
    if (!own || !this.settled || entry.account_key === own.accountKey) return;
    const previous = this.ownCheck;
    this.ownCheck = (async () => {
      await previous;
      const userId = own.user;
      const { accounts } = await this.options.call({ type: 'keys_get', user_ids: [userId] });
      const current = accounts.find((account) => account.user_id === userId && account.account_key !== own.accountKey);
      const directory = this.directory as DeviceDirectory;
      if (!current) return;
      const outcome = await own.reported(this.options.call, current, directory.approvedUnder(userId, own.accountKey as string));
      if (outcome === 'same') return;
      if (outcome === 'rollback') {
        // The current key published again over an older one: this device's certificate goes with it.
        await own.publish(this.options.call);
        return;
      }
      directory.setSelf(own.self(), own.accountKey, own.approved);
      directory.announcePending();
      if (outcome === 'restored') {
        await own.publish(this.options.call);
        this.setStanding('approved');
        return;
      }
      // This user's devices are judged under the new key: those it certified (the one that reset) are trusted, the others not.
      this.options.events.error(accountResetAlarm());
      this.setStanding('pending');
    })().catch(this.options.events.error);
  }

  /** Holds whose user is no longer held (accepted, or the server went back to the pinned key) are released. */
  private afterLearning(): void {
    this.holds.releaseUnless((userId) => this.directory?.isHeld(userId) === true);
  }

  private setStanding(state: AccountStanding['state']): void {
    if (state === this.standing) return;
    this.standing = state;
    this.options.events.account({ state });
    if (state !== 'pending') this.approval.release('approved');
  }

  /** The parts that need libsodium, made once it is loaded. */
  private async parts(): Promise<{ own: OwnDevice; directory: DeviceDirectory; mailbox: DeviceMailbox }> {
    const sodium = (this.sodium ??= await loadSodium());
    const { store, events, oldKeysTtlMs } = this.options;
    if (!this.own || !this.directory || !this.mailbox) {
      const own = new OwnDevice(sodium, store, oldKeysTtlMs);
      own.load(this.stored.deviceSecrets, this.stored.account);
      const directory = new DeviceDirectory(sodium, store, events);
      directory.load(this.stored.accounts, this.stored.knownDevices);
      const mailbox = new DeviceMailbox({
        sodium,
        self: () => ({ user_id: own.user, device_id: own.deviceId as number, pairs: own.pairs(), signSecret: own.signSecret() }),
        approvedSignKey: (deviceId, kind) =>
          directory.isTrusted(deviceId) && directory.signer(deviceId)?.user_id === own.user
            ? directory.signer(deviceId)?.signKey
            // A device certified under the pinned account key but revoked since (a phone sold before the new one
            // fetched what it sent) still hands over what it sent before: an account-key grant checks itself (its
            // secret must be the pinned key's), and each history part's keys are checked against the commitments of
            // the stored messages they open.
            : directory.grantSigner(own.user, deviceId),
        mayBecomeTrusted: async (call, deviceId) => {
          const reply = await call({ type: 'keys_get', user_ids: [own.user] });
          this.learn(reply.accounts, reply.devices, [own.user]);
          const device = directory.reportOf(deviceId);
          return device?.user_id === own.user && !device.revoked && !directory.isTrusted(deviceId);
        },
        approvedEncKey: (deviceId) => (directory.reportOf(deviceId)?.user_id === own.user ? directory.sealKey(deviceId) : undefined),
        log: this.deviceLog,
        reportError: events.error,
      });
      mailbox.handle('account_key', async (from, body) => {
        // A grant for a new account key may come right after the reset that made it: the reset is taken first.
        await this.ownCheck;
        const refused = await own.receiveAccountKey(this.options.call, from, body);
        if (refused !== undefined) {
          events.error(new ClientError('bad_reply', `an account key grant from device ${from} was refused: ${refused}`, false));
          return;
        }
        directory.setSelf(own.self(), own.accountKey, own.approved);
        directory.announcePending();
        this.setStanding('approved');
      });
      const history = this.historyModule;
      if (history) mailbox.handle('history', (from, body) => history.receive(from, body));
      this.own = own;
      this.directory = directory;
      this.mailbox = mailbox;
      this.opener = new MessageOpener(sodium, own, directory, this.historyKeys, this.replays, this.policy);
    }
    return { own: this.own, directory: this.directory, mailbox: this.mailbox };
  }

  private async whenReady(): Promise<void> {
    if (!this.ready) throw new ClientError('disconnected', 'encryption starts with the first connection', true);
    await this.ready;
  }
}
