import type { HiddenJson, MessageJson, SearchResultsFrame } from '../protocol/frames.js';
import type { EncryptedFileInfo } from './attachment-types.js';
import { ClientCore } from './client-core.js';
import type { Connection } from './connection.js';
import type { ClientMessage } from './e2e-types.js';
import { ClientError } from './errors.js';
import { newClientMsgId } from './ids.js';
import type { SearchFilters, SearchResult } from './local-search.js';
import type { SentMessage } from './outbox.js';
import { FIRST_PAGE, decodeSearchCursor, encodeSearchCursor, interleave, localPage } from './search-merge.js';
import { sealedEdit } from './sealed-edit.js';
import type { RequestJson } from './requests.js';
import type { OutboxEntry } from './store.js';

/** The server's rule for an emoji; absent where the regular expression `v` flag is not supported (the server still checks). */
const ONE_EMOJI = ((): RegExp | undefined => {
  try {
    return new RegExp('^\\p{RGI_Emoji}$', 'v');
  } catch {
    return undefined;
  }
})();

export interface SearchOptions extends SearchFilters {
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
  /** Results per source per page (1–50, default 20): a page holds up to twice as many. */
  readonly limit?: number;
}

export interface SearchPage {
  readonly results: readonly SearchResult[];
  /** Pass as `cursor` for the next page; null: no more. */
  readonly nextCursor: string | null;
}

/** Who has received and read a message (`receipts`): user ids, each in one list, in joining order. */
export interface MessageReceipts {
  /** Their read cursor is at or past the message. */
  readonly read: number[];
  /** A device of theirs received it; not read yet. */
  readonly delivered: number[];
  /** Neither yet. */
  readonly pending: number[];
}

/**
 * The calls that change messages (edit, delete, react) and find them
 * (search), on top of the connection's life (ClientCore). Changes go through
 * the outbox like sends: stored first, sent in their thread's turn, sent again
 * after a reconnect until acked, deduplicated by their client_msg_id.
 */
export abstract class MessagesClient extends ClientCore {
  /**
   * Replaces a message's body (the author's own, within the server's edit window; attachments stay). In an end-to-end
   * encrypted thread the new body is encrypted like a send. Resolves with the ack of the change message; the edit
   * then comes back as `message_changed` on every device of the thread's members.
   */
  async edit(messageId: number, body: unknown, options: { mentions?: readonly number[]; clientMsgId?: string } = {}): Promise<SentMessage> {
    await this.whenStarted('edit');
    if (body === null || body === undefined) throw new ClientError('invalid_field', 'an edit needs a body (to remove a message, delete it)', false, undefined, undefined, { field: 'body' });
    const target = await this.messageTarget(messageId);
    if (target.kind === 'system' || target.change) throw new ClientError('invalid_field', `message ${messageId} cannot be edited (only text and e2e messages)`, false);
    if (target.deleted) throw new ClientError('message_deleted', `message ${messageId} was deleted`, false);
    const client_msg_id = options.clientMsgId ?? newClientMsgId();
    let sealed = body;
    if (target.kind === 'e2e') {
      if (!this.e2e) throw new ClientError('invalid_field', 'editing an encrypted message needs a client made with encryption: true', false);
      // The files' keys travel in the edit: from now on the server shows its envelope as the message's body.
      const files = (target.attachments ?? []).flatMap((file) => (file.encrypted ? [file.encrypted as EncryptedFileInfo] : []));
      sealed = sealedEdit(client_msg_id, body, files);
    }
    this.checkBodySize(sealed);
    const entry: OutboxEntry = {
      client_msg_id, thread_id: target.thread_id, kind: target.kind, body: sealed, created_at: Date.now(),
      change: { type: 'edit', message_id: messageId },
      ...(target.kind === 'e2e' ? { seal_as: target.client_msg_id } : {}),
      ...(options.mentions && options.mentions.length > 0 ? { mentions: [...options.mentions] } : {}),
    };
    return (await this.outbox.addChange(entry)) as SentMessage;
  }

  /**
   * `forEveryone: true`: deletes the message for every member (its author, or a group's owner or admin): its body
   * and files are erased on the server; it stays as a tombstone (`deleted: true`). Goes through the outbox; resolves
   * with the ack, or undefined when it was deleted already.
   *
   * `forEveryone: false`: hides it from this user's own views, on all their devices (`message_hidden`); others still
   * see it. Resolves undefined.
   */
  async deleteMessage(messageId: number, options: { forEveryone: boolean; clientMsgId?: string }): Promise<SentMessage | undefined> {
    await this.whenStarted('deleteMessage');
    if (!options.forEveryone) {
      await this.call({ type: 'delete', message_id: messageId, for: 'me' });
      const thread = this.messages.target(messageId)?.thread_id;
      // The server tells this user's devices (this one too) with a `hidden` event; here at once.
      if (thread !== undefined) this.hiddenArrived([{ thread_id: thread, message_id: messageId }]);
      return undefined;
    }
    const target = await this.messageTarget(messageId);
    return this.outbox.addChange({
      client_msg_id: options.clientMsgId ?? newClientMsgId(), thread_id: target.thread_id, kind: 'text', body: null, created_at: Date.now(),
      change: { type: 'delete', message_id: messageId },
    });
  }

  /**
   * Adds (`on`, the default) or takes back this user's reaction with `emoji` (one emoji). Goes through the
   * outbox; resolves with the ack, or undefined when the reaction was already so. Reactions are visible to the
   * server even in encrypted threads (docs/e2e.md).
   */
  async react(messageId: number, emoji: string, on = true, options: { clientMsgId?: string } = {}): Promise<SentMessage | undefined> {
    await this.whenStarted('react');
    if (ONE_EMOJI && !ONE_EMOJI.test(emoji)) throw new ClientError('invalid_field', `"${emoji}" is not one emoji`, false, undefined, undefined, { field: 'emoji' });
    const target = await this.messageTarget(messageId);
    return this.outbox.addChange({
      client_msg_id: options.clientMsgId ?? newClientMsgId(), thread_id: target.thread_id, kind: 'text', body: null, created_at: Date.now(),
      change: { type: 'reaction', message_id: messageId, emoji, on },
    });
  }

  /**
   * Full-text search: the server's (plaintext threads the user can see) merged with this device's index of the
   * encrypted messages it decrypted (`source: 'local'`). Words match without case or diacritics, the last one as
   * a prefix. Pages: pass `nextCursor` back as `cursor`.
   */
  async search(query: string, options: SearchOptions = {}): Promise<SearchPage> {
    const text = query.trim();
    if (text.length < 1 || text.length > 200) throw new ClientError('invalid_field', 'a search query is 1 to 200 characters', false, undefined, undefined, { field: 'query' });
    const limit = Math.min(50, Math.max(1, Math.floor(options.limit ?? 20)));
    const position = options.cursor ? decodeSearchCursor(options.cursor) : FIRST_PAGE;
    const filters: SearchFilters = { threadId: options.threadId, senderId: options.senderId, after: options.after, before: options.before };
    // The server has nothing to find in an encrypted thread, nor a server of protocol 2 anywhere.
    const serverHasIt = (this.protocol ?? 3) >= 3 && !(filters.threadId !== undefined && this.isEncrypted(filters.threadId));
    let server: SearchResult[] = [];
    let serverNext: string | null = null;
    if (position.server !== null && serverHasIt) {
      const reply = await this.serverSearch({
        type: 'search', query: text, limit,
        ...(filters.threadId !== undefined ? { thread_id: filters.threadId } : {}), ...(filters.senderId !== undefined ? { sender_id: filters.senderId } : {}),
        ...(filters.after !== undefined ? { after: filters.after } : {}), ...(filters.before !== undefined ? { before: filters.before } : {}),
        ...(position.server ? { cursor: position.server } : {}),
      });
      server = (reply?.results ?? []).map((result) => ({ ...result, source: 'server' as const }));
      serverNext = reply?.next_cursor ?? null;
    }
    const local = this.messages.local;
    const page = local && position.local !== null ? localPage(local.search(text, filters), position.local, limit) : { results: [], next: null };
    return { results: interleave(server, page.results), nextCursor: encodeSearchCursor({ server: serverNext, local: page.next }) };
  }

  /**
   * Who has received and read message `seq` of a thread ("message info"): the thread's current members who may
   * see it (joined before it), its author left out. Any member may ask. Since protocol 4 a client is told by
   * `receipt` events only about its own messages, so this is how to show others' progress on any message.
   * `not_found`: not a member of the thread, or no message `seq` this user may see; `unknown_type`: the server is
   * older than protocol 4 (refused here, before anything is sent).
   */
  async receipts(threadId: number, seq: number): Promise<MessageReceipts> {
    const reply = await this.call({ type: 'receipts', thread_id: threadId, seq }, 4);
    return { read: [...reply.read], delivered: [...reply.delivered], pending: [...reply.pending] };
  }

  /** The server's page; undefined when the server has search turned off (`not_found`): the local results stand alone. */
  private async serverSearch(request: RequestJson & { type: 'search' }): Promise<SearchResultsFrame | undefined> {
    try {
      return await this.call(request);
    } catch (error) {
      if (error instanceof ClientError && error.code === 'not_found') return undefined;
      throw error;
    }
  }

  /** The client's copy of a message (as last given or changed), when it holds one. */
  cachedMessage(messageId: number): ClientMessage | undefined {
    return this.messages.target(messageId);
  }

  /**
   * Messages deleted for this user (the `hidden` event, or the `hidden` list after connecting): dropped from the
   * cache and the local index, told once each as `message_hidden`.
   */
  protected hiddenArrived(items: ReadonlyArray<Pick<HiddenJson, 'thread_id' | 'message_id'> & { id?: number }>): void {
    const fresh = this.messages.hidden(items, Math.max(0, ...items.map((item) => item.id ?? 0)));
    for (const item of fresh) {
      this.emit('message_hidden', { threadId: item.thread_id, messageId: item.message_id });
      // The thread's summary showed it: the server's has the one before.
      if (this.threadList.get(item.thread_id)?.last_message?.id === item.message_id) void this.refreshThread(item.thread_id, 'changed');
    }
  }

  /** After the catch-up: the messages hidden for this user while this device was away (protocol 3 servers). */
  protected async catchUpHidden(connection: Connection): Promise<void> {
    if ((connection.welcome?.protocol ?? 0) < 3) return;
    try {
      for (let more = true; more && this.isCurrent(connection); ) {
        const reply = await connection.request({ type: 'hidden', after: this.messages.hiddenCursor, limit: 500 });
        if (!this.isCurrent(connection)) return;
        this.hiddenArrived(reply.items);
        more = reply.more && reply.items.length > 0;
      }
    } catch (error) {
      // Not worth a reconnect: the next connection asks again from the same cursor.
      if (this.isCurrent(connection)) this.reportError(error);
    }
  }

  /** The message an e2e edit changes: the client's copy, else the server's (`jump`), raw (only its client_msg_id and author are needed). */
  protected async editTarget(messageId: number): Promise<Pick<MessageJson, 'client_msg_id' | 'sender_id'> | undefined> {
    const known = this.messages.target(messageId);
    if (known) return known;
    try {
      const page = await this.call({ type: 'jump', message_id: messageId, limit: 3 });
      return page.messages.find((message) => message.id === messageId);
    } catch (error) {
      // A dropped connection holds the edit back for the next one; a refusal (not_found: hidden, gone) leaves it unopened.
      if (error instanceof ClientError && (error.code === 'disconnected' || error.code === 'timeout')) throw error;
      return undefined;
    }
  }

  protected checkBodySize(body: unknown): void {
    let json: string;
    try {
      json = JSON.stringify(body);
    } catch (error) {
      throw new ClientError('invalid_field', `body cannot be sent as JSON: ${(error as Error).message}`, false);
    }
    const limit = this.limits?.max_body_bytes;
    const size = new TextEncoder().encode(json).length;
    if (limit !== undefined && size > limit) throw new ClientError('payload_too_large', `the body is ${size} bytes; the server takes at most ${limit}`, false);
  }

  protected async whenStarted(call: string): Promise<void> {
    if (!this.started) throw new ClientError('closed', `call start() before ${call}(): the store must be loaded first`, false);
    if (this.closing || (this.running && this.current.state === 'stopped')) throw new ClientError('closed', 'the client has stopped', false);
    await this.started;
  }

  /** The thread never gets plaintext (required, or seen encrypted here). */
  private isEncrypted(threadId: number): boolean {
    const thread = this.threadList.get(threadId);
    return this.e2e ? this.e2e.mustEncrypt(threadId, thread) : thread?.e2e_required === true;
  }

  /** The message a change is about: the client's copy, or the server's (`jump`, which also decrypts and keeps it). */
  private async messageTarget(messageId: number): Promise<ClientMessage> {
    const known = this.messages.target(messageId);
    if (known) return known;
    const page = await this.jump(messageId, 3);
    const found = page.messages.find((message) => message.id === messageId);
    if (!found) throw new ClientError('not_found', `message ${messageId} is not one this user can see`, false);
    return found;
  }

  abstract jump(messageId: number, limit?: number): Promise<{ readonly messages: readonly ClientMessage[] }>;
}
