import {
  ChatClient,
  type ClientMessage,
  type ChatClientOptions,
  type ConnectionState,
  type MemberJson,
  type MessageStatus,
  type PresenceJson,
  type ThreadJson,
  type TransportKind,
  type UserJson,
} from '../../src/client/browser.js';
import { LinkCache } from './attachment-links.js';
import { type UploadedAttachment, sendWithAttachments } from './attachment-sdk.js';
import { Attention } from './attention.js';
import { BackgroundPush } from './background-push.js';
import { EncryptionModel } from './e2e-model.js';
import { type ThreadHistoryMode, pushThreadEntry, threadInLocation } from './navigation.js';
import { LocalStorageStore } from './local-store.js';
import { MessageFeatures } from './message-model.js';
import type { SendOptions } from './message-sdk.js';
import { type Session, forgetSession, saveSession } from './session.js';
import { UploadQueue } from './uploads.js';

/** How long a typing indicator shows after the last `typing` event. */
const TYPING_MS = 5000;
/** At most one `typing` request per this many ms while the user types. */
const TYPING_EVERY_MS = 3000;
/** Pages of 50 fetched at most, when a chat opens, to reach its first unread message. */
const UNREAD_PAGES = 10;

declare global {
  interface Window {
    /** Test-only injection point (see the constructor): the transport timings of the SDK. */
    chatdTestClientOptions?: Pick<ChatClientOptions, 'websocketRetryMs' | 'connectTimeoutMs'>;
  }
}

/** A message the user sent that is not back from the server yet. */
export interface PendingMessage {
  readonly client_msg_id: string;
  readonly thread_id: number;
  readonly text: string;
  /** How many files go with it. */
  readonly attachments: number;
}

/**
 * Everything the screens show, kept from the SDK's events; `changed` runs
 * after each change (the app re-renders). Messages are kept per thread in seq
 * order as they arrive live or from history pages.
 */
export class ChatModel {
  readonly client: ChatClient;
  private readonly store: LocalStorageStore;
  readonly e2e: EncryptionModel;
  /** Files being attached in the composer, per thread. */
  readonly uploads: UploadQueue;
  /** Signed links of the attachments on screen. */
  readonly links: LinkCache;
  /** Replies, edits, deletes, reactions, jumps and search. */
  readonly msg: MessageFeatures;
  /** Title, favicon, notifications and sound. */
  readonly attention: Attention;
  /** Web Push: notifications while no tab is open. */
  readonly push: BackgroundPush;
  /** Why the client cannot run at all (a damaged store: its secrets are left as they are). */
  fatal: string | undefined;
  connection: ConnectionState = 'connecting';
  /** What the client is connected over: 'websocket', or a fallback ('stream', 'poll') where the network blocks WebSockets. */
  transport: TransportKind | undefined;
  pendingCount = 0;
  threads: ThreadJson[] = [];
  readonly messages = new Map<number, ClientMessage[]>();
  /** Per thread, the newest message as the client gave it (decrypted): the list's preview. */
  readonly latest = new Map<number, ClientMessage>();
  readonly hasOlder = new Map<number, boolean>();
  /** Per thread, the read cursor when it was opened with unread messages: the "New messages" divider goes after it. */
  readonly unreadFrom = new Map<number, number>();
  readonly statuses = new Map<string, MessageStatus>();
  readonly users = new Map<number, UserJson>();
  readonly presence = new Map<number, PresenceJson>();
  readonly typing = new Map<number, Map<number, number>>();
  readonly members = new Map<number, MemberJson[]>();
  /**
   * Per thread, how far the other members have read and received (from members' cursors and live receipts): the
   * ticks of the user's own messages. Receipts reach the author of every message a cursor passes (protocol 4
   * sends no others), so for each own message the highest cursor among the others is exact: the peer's in a
   * direct chat, "at least one other member" in a group (as the SDK's status; Message info says who).
   */
  readonly others = new Map<number, { read: number; delivered: number }>();
  /** Threads whose newest history page was fetched (live arrivals alone do not make a history). */
  private readonly historyLoaded = new Set<number>();
  /** Sends refused by the server, with their text, shown with a mark. */
  readonly failed = new Map<number, PendingMessage[]>();
  openThread: number | undefined;
  error: string | undefined;
  /** The server refused a people search (accounts.user_search = "off"): no more suggestions are asked for. */
  peopleSearchOff = false;
  private lastTyping = 0;
  private readonly listeners = new Set<() => void>();

  constructor(public session: Session) {
    this.store = new LocalStorageStore(`chatd.store.${session.user.id}.${session.deviceId}`);
    // Encryption on: the device's keys live in the same localStorage document (a reload keeps its identity);
    // libsodium loads as a separate chunk once the client starts.
    this.client = new ChatClient({
      server: location.origin, token: session.token, store: this.store, encryption: true, reconnect: { initialDelayMs: 300, maxDelayMs: 10_000 },
      // Test-only: a test's init script shortens how often a blocked WebSocket is tried again (nothing in the app sets it).
      ...window.chatdTestClientOptions,
    });
    this.e2e = new EncryptionModel(this.client, session.user.id, this.store, () => this.changed(), () => void this.reloadMessages());
    this.uploads = new UploadQueue(this.client, () => this.changed());
    this.links = new LinkCache(this.client, () => this.changed());
    this.msg = new MessageFeatures(this, () => this.changed());
    this.push = new BackgroundPush(this.client, () => this.changed());
    this.attention = new Attention(this);
    this.subscribe(() => this.attention.refresh());
    this.users.set(session.user.id, session.user);
    const { client } = this;
    client.on('state', (change) => {
      this.connection = change.state;
      this.pendingCount = change.pending;
      if (change.state === 'online') {
        void this.refreshThreads();
        void this.e2e.refreshRequests();
      }
      if (change.state === 'stopped' && (change.reason === 'auth_failed' || change.reason === 'device_revoked')) void this.logOut();
      this.changed();
    });
    client.on('transport', (change) => {
      this.transport = change.transport;
      this.changed();
    });
    client.on('message', (message) => {
      // Their message is here: they stopped typing.
      this.typing.get(message.thread_id)?.delete(message.sender_id);
      this.add(message.thread_id, [message]);
    });
    client.on('thread', ({ thread }) => {
      this.putThread(thread);
      // The open thread is being read: what just counted as unread is read.
      if (thread.id === this.openThread && thread.unread > 0) void this.markRead(thread.id).catch(() => {});
      this.changed();
    });
    client.on('status', (change) => {
      this.statuses.set(change.client_msg_id, change.status);
      this.changed();
    });
    client.on('receipt', (receipt) => {
      if (receipt.user_id !== this.session.user.id) {
        const seen = this.others.get(receipt.thread_id) ?? { read: 0, delivered: 0 };
        const read = receipt.kind === 'read' ? Math.max(seen.read, receipt.seq) : seen.read;
        this.others.set(receipt.thread_id, { read, delivered: Math.max(seen.delivered, read, receipt.kind === 'delivered' ? receipt.seq : 0) });
      }
      this.changed();
    });
    client.on('presence', (presence) => {
      this.presence.set(presence.user_id, presence);
      this.changed();
    });
    client.on('typing', (event) => {
      const byUser = this.typing.get(event.thread_id) ?? new Map<number, number>();
      byUser.set(event.user_id, Date.now() + TYPING_MS);
      this.typing.set(event.thread_id, byUser);
      this.changed();
      setTimeout(() => this.changed(), TYPING_MS + 50);
    });
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    try {
      await this.client.start();
    } catch (error) {
      // store_corrupt: starting afresh would make a new identity behind the user's back.
      this.fatal = error instanceof Error ? error.message : String(error);
      this.changed();
      return;
    }
    this.threads = this.client.cachedThreads();
    this.changed();
    this.attention.refresh();
    // The chat that was open before a reload: under an entry of the list, so that Back leads there.
    const open = threadInLocation();
    if (open !== undefined) void this.open(open, 'reload');
    // A clicked background notification, with a chatd tab open: that tab opens the chat.
    this.push.onOpenThread((threadId) => void this.open(threadId));
    // Notifications allowed before (this visit or an earlier one): keep the subscription registered.
    void this.push.start();
  }

  /** Follows Back, Forward and a changed #thread-N: the page shows what the address names. */
  followLocation(): void {
    const named = threadInLocation();
    if (named !== this.openThread) void this.open(named, 'none');
  }

  /** How far the others have got in the thread: what ticks own messages. */
  tick(threadId: number, seq: number, status: MessageStatus | undefined): MessageStatus {
    const others = this.others.get(threadId);
    if (others && others.read >= seq) return 'read';
    if (others && others.delivered >= seq) return status === 'read' ? 'read' : 'delivered';
    return status ?? 'sent';
  }

  async logOut(): Promise<void> {
    // Before the token goes: the server forgets the subscription, the browser drops it.
    await this.push.stop();
    void this.client.api.logout().catch(() => {});
    void this.client.close();
    this.store.clear();
    forgetSession();
    location.reload();
  }

  /** Messages of the thread sent from here and not yet back from the server, oldest first. */
  pending(threadId: number): PendingMessage[] {
    const arrived = new Set((this.messages.get(threadId) ?? []).map((m) => m.client_msg_id));
    return this.client
      .pending()
      // Edits, deletes and reactions wait in the same outbox: they are not messages of their own.
      .filter((entry) => entry.thread_id === threadId && !entry.change && !arrived.has(entry.client_msg_id))
      .map((entry) => {
        // An encrypted message with files is kept sealed-to-be: { chatd, body, attachments } (the SDK's shape).
        const sealed = entry.body as { chatd?: unknown; body?: { text?: unknown } | null; attachments?: unknown[]; text?: unknown } | null;
        const inner = typeof sealed?.chatd === 'string' ? sealed.body : sealed;
        const files = typeof sealed?.chatd === 'string' ? sealed.attachments : (entry as { attachments?: unknown[] }).attachments;
        return { client_msg_id: entry.client_msg_id, thread_id: threadId, text: String(inner?.text ?? ''), attachments: files?.length ?? 0 };
      });
  }

  typingIn(threadId: number): UserJson[] {
    const now = Date.now();
    return [...(this.typing.get(threadId) ?? new Map<number, number>())].filter(([, until]) => until > now).flatMap(([userId]) => this.users.get(userId) ?? []);
  }

  title(thread: ThreadJson): string {
    return thread.kind === 'direct' ? (thread.peer?.display_name ?? 'Direct chat') : (thread.title ?? 'Group');
  }

  /**
   * Shows the thread (undefined: the list). `mode` says what the browser's
   * history gets (navigation.ts): by default an entry of its own, so that
   * Back closes the chat.
   */
  async open(threadId: number | undefined, mode: ThreadHistoryMode = 'push'): Promise<void> {
    const previous = this.openThread;
    this.openThread = threadId;
    this.error = undefined;
    pushThreadEntry(previous, threadId, mode);
    const thread = this.threads.find((t) => t.id === threadId);
    // Message info belongs to the chat it was opened in.
    if (threadId !== previous) this.msg.info = undefined;
    if (threadId !== undefined && threadId !== previous) {
      if (thread && thread.unread > 0 && document.visibilityState !== 'hidden') this.unreadFrom.set(threadId, thread.read_seq);
      else this.unreadFrom.delete(threadId);
    }
    this.changed();
    if (threadId === undefined) return;
    // The chat is on screen: its background notification has said what it had to.
    void this.push.closeNotifications(threadId);
    try {
      if (!this.historyLoaded.has(threadId)) await this.loadLatest(threadId);
      await this.loadUnread(threadId);
      const { members } = await this.client.thread(threadId);
      this.members.set(threadId, members);
      const others = members.filter((m) => m.user.id !== this.session.user.id);
      if (others.length > 0) {
        this.others.set(threadId, { read: Math.max(...others.map((m) => m.read_seq)), delivered: Math.max(...others.map((m) => Math.max(m.delivered_seq, m.read_seq))) });
      }
      for (const member of members) this.users.set(member.user.id, member.user);
      if (others.length > 0) for (const presence of await this.client.presence(others.map((m) => m.user.id))) this.presence.set(presence.user_id, presence);
      await this.markRead(threadId);
    } catch (error) {
      this.fail(error);
    }
    this.changed();
  }

  /**
   * Opens the direct chat with `username`. A new one is encrypted when both
   * people have a device their account approved (then it stays encrypted);
   * otherwise it is plain, and its header says so.
   */
  async startDirect(username: string): Promise<ThreadJson> {
    const thread = await this.client.openDirect(username);
    const fresh = thread.last_seq === 0;
    if (fresh && thread.peer && !this.e2e.isEncrypted(thread) && (await this.e2e.allTrusted([this.session.user.id, thread.peer.id]))) {
      return (await this.client.requireEncryption(thread.id)).thread;
    }
    return thread;
  }

  /**
   * Creates a group, encrypted when every member (this user too) has an
   * approved device. Members this page knows are checked before it is
   * created (`e2eRequired`); with others, their keys can be had only once
   * they share the group, so it is checked just after and switched on then.
   */
  async startGroup(title: string, usernames: readonly string[]): Promise<ThreadJson> {
    const byName = new Map([...this.users.values()].map((user) => [user.username, user.id]));
    const known = usernames.map((name) => byName.get(name));
    const ids = known.filter((id): id is number => id !== undefined);
    if (ids.length === known.length && (await this.e2e.allTrusted([this.session.user.id, ...ids]))) {
      return this.client.createGroup(title, usernames, { e2eRequired: true });
    }
    const thread = await this.client.createGroup(title, usernames);
    const { members } = await this.client.thread(thread.id);
    if (await this.e2e.allTrusted(members.map((member) => member.user.id))) return (await this.client.requireEncryption(thread.id)).thread;
    return thread;
  }

  /** Messages shown before this device had their keys (history just arrived from another own device): fetched again. */
  async reloadMessages(): Promise<void> {
    this.messages.clear();
    this.historyLoaded.clear();
    this.changed();
    if (this.openThread !== undefined) await this.loadLatest(this.openThread).catch((error: unknown) => this.fail(error));
    this.changed();
  }

  nameOf(userId: number): string {
    return this.users.get(userId)?.display_name ?? `user ${userId}`;
  }

  /** The users of a thread other than this one: the peer of a direct chat, the members of a group once loaded. */
  othersIn(thread: ThreadJson): number[] {
    if (thread.peer) return [thread.peer.id];
    return (this.members.get(thread.id) ?? []).map((member) => member.user.id).filter((id) => id !== this.session.user.id);
  }

  private async loadLatest(threadId: number): Promise<void> {
    const page = await this.client.history(threadId, 'latest', 50);
    this.historyLoaded.add(threadId);
    this.add(threadId, page.messages);
    this.setHasOlder(threadId, page.has_more_before);
  }

  async loadOlder(threadId: number): Promise<void> {
    const first = this.messages.get(threadId)?.[0];
    if (!first) return this.loadLatest(threadId);
    const page = await this.client.history(threadId, { before: first.seq }, 50);
    this.add(threadId, page.messages);
    this.setHasOlder(threadId, page.has_more_before);
  }

  /**
   * Older pages until the first unread message is on screen (the divider
   * goes there), at most UNREAD_PAGES of them: past that the divider sits at
   * the top and "Load older messages" fetches the rest.
   */
  private async loadUnread(threadId: number): Promise<void> {
    const from = this.unreadFrom.get(threadId);
    if (from === undefined) return;
    for (let page = 0; page < UNREAD_PAGES; page++) {
      const first = this.messages.get(threadId)?.[0];
      if (!first || first.seq <= from + 1 || !this.hasOlder.get(threadId)) return;
      await this.loadOlder(threadId);
    }
  }

  /**
   * Whether "Load older messages" shows. A page can say there is more before
   * it while messages that came live already fill the gap down to the first
   * seq: then nothing older exists.
   */
  private setHasOlder(threadId: number, serverSays: boolean): void {
    const first = this.messages.get(threadId)?.[0];
    this.hasOlder.set(threadId, serverSays && first !== undefined && first.seq > 1);
  }

  /** The seq before which the "New messages" divider shows in the open thread, if any. */
  firstUnread(threadId: number): number | undefined {
    const from = this.unreadFrom.get(threadId);
    if (from === undefined) return undefined;
    return this.messages.get(threadId)?.find((message) => message.seq > from && message.sender_id !== this.session.user.id)?.seq;
  }

  /** The user's own display name changed (settings): kept for this page and the next visit. */
  renamed(user: UserJson): void {
    this.session = { ...this.session, user };
    saveSession(this.session);
    this.users.set(user.id, user);
    this.changed();
  }

  /** Sends `text` (may be empty when files go) with the finished uploads; `options`: the message answered, the members mentioned. */
  async send(threadId: number, text: string, attachments: readonly UploadedAttachment[] = [], options: SendOptions = {}): Promise<void> {
    // The next keystroke is a new message being typed: say so at once.
    this.lastTyping = 0;
    try {
      const sending = attachments.length > 0 ? sendWithAttachments(this.client, threadId, text, attachments, options) : this.client.send(threadId, { text }, options);
      this.changed();
      await sending;
    } catch (error) {
      // Refused for good (no longer a member, say): kept in view, marked, with why.
      const failed = this.failed.get(threadId) ?? [];
      this.failed.set(threadId, [...failed, { client_msg_id: `failed-${failed.length}`, thread_id: threadId, text, attachments: attachments.length }]);
      this.fail(error);
      this.changed();
    }
  }

  userTyped(threadId: number): void {
    const now = Date.now();
    if (now - this.lastTyping < TYPING_EVERY_MS || this.connection !== 'online') return;
    this.lastTyping = now;
    void this.client.typing(threadId).catch(() => {});
  }

  /** Runs a user action; its failure shows as the error line. */
  async act(action: () => Promise<unknown>, options: { refresh?: boolean } = {}): Promise<boolean> {
    this.error = undefined;
    try {
      await action();
      if (options.refresh !== false) await this.refreshThreads();
      return true;
    } catch (error) {
      this.fail(error);
      return false;
    } finally {
      this.changed();
    }
  }

  /**
   * The badge a thread shows. The chat on screen is being read: its count is
   * zero at once rather than after the read round trip, so a badge never
   * flickers on the chat the user is looking at.
   */
  unreadShown(thread: ThreadJson): number {
    return thread.id === this.openThread && document.visibilityState !== 'hidden' ? 0 : thread.unread;
  }

  private async markRead(threadId: number): Promise<void> {
    const thread = this.threads.find((t) => t.id === threadId);
    if (!thread || thread.unread === 0 || document.visibilityState === 'hidden') return;
    await this.client.markRead(threadId);
  }

  /** Reads what arrived in the open thread while the page was hidden. */
  pageShown(): void {
    if (this.openThread !== undefined) void this.markRead(this.openThread).catch(() => {});
  }

  private async refreshThreads(): Promise<void> {
    try {
      const { threads } = await this.client.threads();
      this.threads = threads;
      for (const thread of threads) if (thread.peer) this.users.set(thread.peer.id, thread.peer);
      this.changed();
      // Presence dots in the list: the peers of direct chats.
      const peers = threads.flatMap((thread) => (thread.peer && thread.member ? [thread.peer.id] : []));
      if (peers.length > 0) for (const presence of await this.client.presence(peers)) this.presence.set(presence.user_id, presence);
      this.changed();
    } catch {
      // Offline: the list stays as it was and refreshes when the connection is back.
    }
  }

  /** A thread just created or opened by the user: in the list at once. */
  putThread(thread: ThreadJson): void {
    const others = this.threads.filter((t) => t.id !== thread.id);
    this.threads = [thread, ...others].sort((a, b) => activity(b) - activity(a));
    if (thread.peer) this.users.set(thread.peer.id, thread.peer);
  }

  add(threadId: number, messages: readonly ClientMessage[]): void {
    for (const message of messages) if (message.seq > (this.latest.get(threadId)?.seq ?? 0)) this.latest.set(threadId, message);
    const bySeq = new Map((this.messages.get(threadId) ?? []).map((m) => [m.seq, m]));
    for (const message of messages) bySeq.set(message.seq, message);
    this.messages.set(threadId, [...bySeq.values()].sort((a, b) => a.seq - b.seq));
    this.changed();
  }

  private fail(error: unknown): void {
    this.error = error instanceof Error ? error.message : String(error);
  }

  /** Tells the screens that something they show changed. */
  notify(): void {
    this.changed();
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

function activity(thread: ThreadJson): number {
  return thread.last_message?.created_at ?? thread.created_at;
}
