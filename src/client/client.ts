import type { ContactsReplyFrame, MemberJson, MessageJson, MessagesFrame, PresenceJson, ReadStateFrame, ThreadJson, UserJson, UserRefJson } from '../protocol/frames.js';
import {
  type AttachmentLinks, type ClientAttachment, type DownloadOptions, type EncryptedFileInfo, type UploadOptions, type UploadedAttachment,
  sealedWithAttachments,
} from './attachment-types.js';
import { type NamedSource, blobSource, bytesSource } from './attachments.js';
import { MessagesClient } from './client-messages.js';
import type { E2eSession } from './e2e.js';
import type { ClientMessage, DeviceFingerprint, OwnDevice, SafetyNumber } from './e2e-types.js';
import { ClientError } from './errors.js';
import type { HistoryShare } from './history-share.js';
import { AccountApi, type LoginResult, type Platform } from './http.js';
import { newClientMsgId } from './ids.js';
import type { SentMessage } from './outbox.js';
import type { OutboxEntry } from './store.js';
import type { ChatClientOptions, HistoryAnchor, HistoryPage, UserRef } from './types.js';

export type {
  ChatClientOptions, ClientEvents, ConnectionState, HistoryAnchor, HistoryPage, StateChange, ThreadChange, TransportChange, TransportKind, UserRef,
} from './types.js';

/**
 * A chatd client for one device: keeps a connection up, delivers every message
 * to the app once and in order, and sends the app's messages until the server
 * has them (docs/client.md).
 */
export class ChatClient extends MessagesClient {
  /** Logs in over HTTP as a new device and returns a client for it (not started) with the login result. */
  static async login(
    options: Omit<ChatClientOptions, 'token'> & { username: string; password: string; deviceName: string; platform?: Platform },
  ): Promise<{ client: ChatClient; login: LoginResult }> {
    const login = await new AccountApi(options.server).login({
      username: options.username, password: options.password, device_name: options.deviceName, platform: options.platform ?? 'other',
    });
    return { client: new this({ ...options, token: login.token }), login };
  }

  // ---- messages ----

  /**
   * Sends a message: stored in the outbox first, then sent, and sent again after
   * every reconnect until the server acks it. Resolves with the ack. `body` is
   * any JSON but null; text messages use `{ text }`. With `encryption` on
   * the message is end-to-end encrypted when `encrypted` is set, the thread
   * requires it, the thread was ever seen encrypted, or with `encryption:
   * 'always'` (encrypted again for each attempt, to the thread's trusted
   * devices then). Such a thread never gets plaintext: `encrypted: false`
   * there rejects with `encryption_required`, nothing stored. A send to a
   * contact whose verified identity changed waits in the outbox until
   * `acceptIdentity`.
   *
   * `attachments`: what `upload` resolved with (1 to 10 uploads, an encrypted
   * thumbnail counting as one); `body` may then be
   * null. An encrypted message takes encrypted uploads only (`upload(…, {
   * encrypt: true })`): their keys and hashes are sealed with the body, the
   * server sees their ids. A plaintext one takes plaintext uploads (or ids,
   * to forward a file).
   *
   * `replyTo`: the id of an earlier message of the thread this one answers.
   * `mentions`: user ids of members the text mentions (`parseMentions`); they
   * are notified even when they muted the thread. Both stay outside the
   * envelope in an encrypted thread (the server needs them).
   */
  async send(
    threadId: number,
    body: unknown,
    options: {
      encrypted?: boolean; clientMsgId?: string; attachments?: ReadonlyArray<string | ClientAttachment>;
      replyTo?: number; mentions?: readonly number[];
    } = {},
  ): Promise<SentMessage> {
    if (!this.started) throw new ClientError('closed', 'call start() before send(): the store must be loaded first', false);
    if (this.closing || (this.running && this.current.state === 'stopped')) throw new ClientError('closed', 'the client has stopped', false);
    await this.started;
    const files = options.attachments ?? [];
    if (files.length > 10) throw new ClientError('invalid_field', `a message carries at most 10 attachments, not ${files.length}`, false);
    if ((body === null || body === undefined) && files.length === 0) throw new ClientError('invalid_field', 'body must be a JSON value other than null (or give attachments)', false);
    const thread = this.threadList.get(threadId);
    const sticky = this.e2e ? this.e2e.mustEncrypt(threadId, thread) : thread?.e2e_required === true;
    const encryptedFiles = files.filter((file): file is ClientAttachment & { encrypted: EncryptedFileInfo } => typeof file !== 'string' && file.encrypted !== undefined);
    if (sticky && options.encrypted === false) {
      throw new ClientError('encryption_required', `thread ${threadId} is end-to-end encrypted: it never gets plaintext`, false);
    }
    const kind = options.encrypted || sticky || (encryptedFiles.length > 0 && options.encrypted === undefined) ? 'e2e' : 'text';
    if (kind === 'e2e' && encryptedFiles.length < files.length) {
      throw new ClientError('encryption_required', `thread ${threadId}'s message is end-to-end encrypted: its attachments must be uploaded with encrypt: true`, false);
    }
    if (kind === 'text' && encryptedFiles.length > 0) {
      throw new ClientError('invalid_field', 'an encrypted upload goes in an end-to-end encrypted message (its key travels sealed in it)', false);
    }
    const ids = [...new Set(kind === 'e2e' ? encryptedFiles.flatMap(({ encrypted: info }) => (info.thumbnail ? [info.id, info.thumbnail.id] : [info.id])) : files.map((file) => (typeof file === 'string' ? file : file.id)))];
    if (ids.length > 10) {
      throw new ClientError('invalid_field', `a message carries at most 10 uploads; these attachments are ${ids.length} with their encrypted thumbnails`, false);
    }
    const sealed = kind === 'e2e' && encryptedFiles.length > 0 ? sealedWithAttachments(body, encryptedFiles.map((file) => file.encrypted)) : (body ?? null);
    let json: string;
    try {
      json = JSON.stringify(sealed);
    } catch (error) {
      throw new ClientError('invalid_field', `body cannot be sent as JSON: ${(error as Error).message}`, false);
    }
    const limit = this.limits?.max_body_bytes;
    const size = new TextEncoder().encode(json).length;
    if (limit !== undefined && size > limit) throw new ClientError('payload_too_large', `the body is ${size} bytes; the server takes at most ${limit}`, false);
    const entry: OutboxEntry = {
      client_msg_id: options.clientMsgId ?? newClientMsgId(),
      thread_id: threadId,
      kind,
      body: sealed,
      ...(ids.length > 0 ? { attachments: ids.map((id) => ({ id })) } : {}),
      created_at: Date.now(),
      ...(options.replyTo !== undefined ? { reply_to: options.replyTo } : {}),
      ...(options.mentions && options.mentions.length > 0 ? { mentions: [...new Set(options.mentions)] } : {}),
    };
    // The thread is encrypted from this send on, not from when it is sealed: a send right after it, or
    // one made offline, would otherwise go out in plaintext.
    if (entry.kind === 'e2e') this.e2e?.encryptedSend(threadId);
    return this.outbox.add(entry);
  }

  // ---- attachments ----

  /**
   * Uploads a file (tus, resumable: after a dropped connection it asks the
   * server how much arrived and goes on). Resolves with the server's
   * description, or with `encrypt`, the file encrypted here under a fresh key
   * (the server sees only ciphertext) with what `send` seals for the
   * recipients. Pass the result to `send`.
   */
  upload(input: Blob | Uint8Array, options: UploadOptions = {}): Promise<UploadedAttachment> {
    return this.uploadSource(input instanceof Uint8Array ? bytesSource(input) : blobSource(input), options);
  }

  /**
   * An attachment's bytes (the object from `message.attachments`, an upload's
   * result, or a plaintext attachment's id). An encrypted one is decrypted and
   * its hash checked: `attachment_corrupt` otherwise, never altered bytes.
   */
  download(attachment: string | ClientAttachment, options: DownloadOptions = {}): Promise<Uint8Array> {
    return this.attachments.download(attachment, options);
  }

  /** Signed absolute links to a plaintext attachment (and its thumbnail) for `<img>`, `<audio>`, `<video>`. */
  attachmentLinks(id: string): Promise<AttachmentLinks> {
    return this.attachments.links(id);
  }

  protected uploadSource(source: NamedSource, options: UploadOptions): Promise<UploadedAttachment> {
    return this.attachments.upload(source, options);
  }

  /** Messages not yet acked by the server, oldest first. A message joins once it is stored, just before `send` sends it. */
  pending(): readonly OutboxEntry[] {
    return this.outbox.pending();
  }

  /** A page of a thread's messages (docs/protocol.md, `history`). Does not go through the `message` event. */
  async history(threadId: number, anchor: HistoryAnchor = 'latest', limit?: number): Promise<HistoryPage> {
    const reply = await this.call({ type: 'history', thread_id: threadId, ...(anchor === 'latest' ? {} : anchor), ...(limit ? { limit } : {}) });
    return this.page(reply);
  }

  /** The page around one message. */
  async jump(messageId: number, limit?: number): Promise<HistoryPage> {
    return this.page(await this.call({ type: 'jump', message_id: messageId, ...(limit ? { limit } : {}) }));
  }

  /** Marks the thread read up to `seq` (default: the last message this device has of it). */
  async markRead(threadId: number, seq?: number): Promise<ReadStateFrame> {
    // Everything this device has: the thread list's last seq can lag what was given to the app (a thread_get
    // answered before messages that were delivered ahead of its reply), the receiver's cursor cannot.
    const upTo = seq ?? Math.max(this.threadList.get(threadId)?.last_seq ?? 0, this.receiver.cursors().get(threadId) ?? 0);
    const reply = await this.call({ type: 'read', thread_id: threadId, seq: upTo });
    const moved = this.threadList.readMoved(threadId, reply.read_seq, reply.unread);
    if (moved) this.emit('thread', { thread: moved.thread, reason: 'read' });
    return reply;
  }

  /** Tells the thread's members that the user is typing. Repeat every few seconds while they type. */
  async typing(threadId: number): Promise<void> {
    await this.call({ type: 'typing', thread_id: threadId });
  }

  // ---- threads ----

  /** The thread list from the server (also refreshes `threadList()`). */
  async threads(): Promise<{ threads: ThreadJson[]; total_unread: number }> {
    const reply = await this.call({ type: 'threads' });
    this.threadList.replaceAll(reply.threads);
    for (const thread of reply.threads) this.e2e?.threadSeen(thread);
    return { threads: [...reply.threads], total_unread: reply.total_unread };
  }

  /** The threads as the client knows them now, most recent activity first; current once `online`. */
  cachedThreads(): ThreadJson[] {
    return this.threadList.all();
  }

  /** Unread messages of one thread, or of all (muted and former threads included), as the client knows them. */
  unread(threadId?: number): number {
    return threadId === undefined ? this.threadList.totalUnread() : (this.threadList.get(threadId)?.unread ?? 0);
  }

  thread(threadId: number): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'thread_get', thread_id: threadId });
  }

  /** The direct thread with `user`, created on first use. */
  async openDirect(user: UserRef): Promise<ThreadJson> {
    return (await this.threadCall({ type: 'direct_open', ...userRef(user) })).thread;
  }

  /** `e2eRequired`: the group takes end-to-end encrypted messages only, for good. */
  async createGroup(title: string, members: readonly UserRef[], options: { e2eRequired?: boolean } = {}): Promise<ThreadJson> {
    const request = { type: 'group_create' as const, title, members: members.map(memberRef), ...(options.e2eRequired ? { e2e_required: true } : {}) };
    return (await this.threadCall(request)).thread;
  }

  /** From now on the thread takes end-to-end encrypted messages only (cannot be undone). */
  requireEncryption(threadId: number): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'require_e2e', thread_id: threadId });
  }

  // ---- end-to-end encryption (with `encryption` on) ----

  /** This user's devices: this one, the approved, the pending (waiting for approval) and the revoked. */
  devices(): Promise<OwnDevice[]> {
    return this.requireE2e().devices();
  }

  /**
   * Approves a pending device of this user: `fingerprint` is what the new
   * device shows (`ownFingerprint()` there); it must match. Signs the device
   * with the account key, tells the server, and hands the device the account key.
   */
  approveDevice(deviceId: number, options: { fingerprint: string }): Promise<void> {
    return this.requireE2e().approveDevice(deviceId, options.fingerprint);
  }

  /** Refuses a pending device (or drops an approved one): it is revoked. */
  rejectDevice(deviceId: number): Promise<void> {
    return this.requireE2e().rejectDevice(deviceId);
  }

  /** This device's fingerprint: a new device shows it, the approving device compares it. */
  ownFingerprint(): string {
    return this.requireE2e().ownFingerprint();
  }

  /** The safety number of this user and `userId`, from both pinned account keys: equal on both sides unless a key was substituted. */
  safetyNumber(userId: number): Promise<SafetyNumber> {
    return this.requireE2e().safetyNumber(userId);
  }

  /** Checks a scanned QR code (the other side's `safetyNumber(...).qr`): true, and `userId` marked verified, when it matches. */
  verifyQr(userId: number, scanned: string): Promise<boolean> {
    return this.requireE2e().verifyQr(userId, scanned);
  }

  /** The user compared the safety number: a later change of `userId`'s account key holds sends until `acceptIdentity`. */
  markVerified(userId: number): Promise<void> {
    return this.requireE2e().markVerified(userId, true);
  }

  unverify(userId: number): Promise<void> {
    return this.requireE2e().markVerified(userId, false);
  }

  /** Accepts `userId`'s new account key: held sends go out; `verified` stays false until verified again. */
  acceptIdentity(userId: number): Promise<void> {
    return this.requireE2e().acceptIdentity(userId);
  }

  /** A user's devices as pinned here (not the server's current word: `mismatch` says where it differs). */
  fingerprints(userId: number): Promise<DeviceFingerprint[]> {
    return this.requireE2e().fingerprints(userId);
  }

  /** A new encryption key for this device (counter + 1), certified again with the account key; resolves with the fingerprint (unchanged). */
  rotateKeys(): Promise<string> {
    return this.requireE2e().rotate();
  }

  /**
   * Replaces this user's account key with a new one made on this device (an
   * approved device was stolen: revoke it first). This device stays approved
   * (`account` `created`); every other device of the user is pending until
   * approved again (`device_request` here), and gets an `account_reset`
   * error event; every contact sees `identity` `changed`, and one who had
   * verified this user holds sends until they accept (docs/e2e.md).
   *
   * The server takes a reset from an approved device; a device that is not
   * approved (every approved one was lost) must give the user's `password`
   * (wrong: `invalid_credentials`; none: `forbidden`). It is sent once, never stored.
   */
  resetAccount(options: { readonly password?: string } = {}): Promise<void> {
    return this.requireE2e().resetAccount(options);
  }

  /**
   * Shares this device's message keys with another approved device of this
   * user (docs/e2e.md, "History for a new device"): of `threads` (default:
   * all), of messages from `since` on (ms epoch), at most
   * `maxHistoryMessages` (the newest). Sent through the server in sealed,
   * signed parts (`history_progress` after each); resolves once all are sent.
   * Cut short, it continues at the next connect, or when called again with
   * the same choice. Only what this device can read is shared.
   */
  async shareHistory(deviceId: number, choice: { threads?: number[]; since?: number } = {}): Promise<{ grant_id: string; messages: number; truncated: boolean }> {
    const e2e = this.requireE2e();
    await e2e.devices(); // this user's devices as the server has them now (an approval made elsewhere)
    return (this.historyShare as HistoryShare).share(deviceId, choice);
  }

  private requireE2e(): E2eSession {
    if (!this.e2e) throw new ClientError('invalid_field', 'encryption is off: create the client with `encryption: true` (or `\'always\'`)', false);
    return this.e2e;
  }

  /** A history page, its encrypted messages decrypted; kept in the client's copies (changes apply to them) and the local index. */
  private async page(reply: MessagesFrame): Promise<HistoryPage> {
    const e2e = this.e2e;
    // Pages show each message in its latest state; change messages are never in them (kept out should a server send one).
    const content = reply.messages.filter((message) => !message.change);
    const messages = e2e
      ? await Promise.all(content.map((message) => (message.kind === 'e2e' ? this.openForPage(e2e, message) : message)))
      : content;
    for (const message of messages) this.messages.seen(message);
    return { thread_id: reply.thread_id, messages, has_more_before: reply.has_more_before, has_more_after: reply.has_more_after };
  }

  /**
   * One message of a page: one that cannot be opened now (its sender's keys could not be fetched: a dropped
   * connection, a server error) is given as it came, marked `unknown_sender`, and the error reported; the rest of
   * the page still comes. Asking for the page again later may open it.
   */
  private async openForPage(e2e: E2eSession, message: MessageJson): Promise<ClientMessage> {
    try {
      return await e2e.open(message);
    } catch (error) {
      this.emit('error', error instanceof Error ? error : new Error(String(error)));
      return { ...message, e2e: { status: 'unknown_sender', fingerprint: undefined } };
    }
  }

  addMembers(threadId: number, members: readonly UserRef[]): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'group_add', thread_id: threadId, members: members.map(memberRef) });
  }

  async removeMember(threadId: number, user: UserRef): Promise<void> {
    await this.call({ type: 'group_remove', thread_id: threadId, ...userRef(user) });
  }

  async leaveGroup(threadId: number): Promise<void> {
    await this.call({ type: 'group_leave', thread_id: threadId });
  }

  renameGroup(threadId: number, title: string): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'group_rename', thread_id: threadId, title });
  }

  setRole(threadId: number, user: UserRef, role: 'owner' | 'admin' | 'member'): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'group_role', thread_id: threadId, role, ...userRef(user) });
  }

  /** Mutes or labels the thread for this user; `label: null` clears the label. */
  updateThread(threadId: number, settings: { muted?: boolean; label?: string | null }): Promise<{ thread: ThreadJson; members: MemberJson[] }> {
    return this.threadCall({ type: 'thread_settings', thread_id: threadId, ...settings });
  }

  // ---- people ----

  async presence(userIds: readonly number[]): Promise<PresenceJson[]> {
    return [...(await this.call({ type: 'presence', user_ids: userIds })).users];
  }

  async contacts(): Promise<ContactsReplyFrame['contacts']> {
    return (await this.call({ type: 'contacts' })).contacts;
  }

  async addContact(user: UserRef): Promise<void> {
    await this.call({ type: 'contact_add', ...userRef(user) });
  }

  /**
   * People whose username or display name starts with `prefix` (at least 2
   * characters), as far as the server's accounts.user_search allows
   * (`forbidden` when it is off; a whole username when it is "exact").
   */
  async searchUsers(prefix: string, limit?: number): Promise<UserJson[]> {
    return [...(await this.call({ type: 'users_search', query: prefix, ...(limit === undefined ? {} : { limit }) })).users];
  }

  async removeContact(userId: number): Promise<void> {
    await this.call({ type: 'contact_remove', user_id: userId });
  }

  /**
   * Registers (or replaces) this device's push token, so that it gets APNs,
   * FCM or Web Push notifications while it is offline. `topic`: the APNs
   * bundle id, when not the server's configured one. Web Push: the token is
   * `JSON.stringify(subscription.toJSON())` of the browser's PushSubscription.
   */
  async registerPush(registration: { platform: 'apns' | 'fcm' | 'webpush'; token: string; topic?: string }): Promise<void> {
    await this.call({ type: 'push_register', ...registration });
  }

  /** No more notifications for this device (the user turned them off). */
  async unregisterPush(): Promise<void> {
    await this.call({ type: 'push_unregister' });
  }
}

function userRef(user: UserRef): UserRefJson {
  if (typeof user === 'string') return { username: user };
  if (typeof user === 'number') return { user_id: user };
  return user;
}

function memberRef(user: UserRef): number | string {
  if (typeof user === 'string' || typeof user === 'number') return user;
  return 'user_id' in user ? user.user_id : user.username;
}

