import type { ClientMessage, UserJson } from '../../src/client/browser.js';
import type { UploadedAttachment } from './attachment-sdk.js';
import { changedMessage, hitsAfterChange, plainText } from './message-changes.js';
import { type MessageChange, type MessageHidden, type SearchHit, parseMentions } from './message-sdk.js';
import type { ChatModel } from './model.js';

/** How many messages a jump loads around its target. */
const JUMP_PAGE = 50;
/** Search results per page. */
const SEARCH_PAGE = 20;

/** What the composer of a thread is doing besides writing a new message. */
export type ComposerMode = { readonly kind: 'reply'; readonly message: ClientMessage } | { readonly kind: 'edit'; readonly message: ClientMessage };

export interface SearchState {
  readonly query: string;
  readonly results: readonly SearchHit[];
  readonly nextCursor: string | null;
  readonly loading: boolean;
  readonly error: string | undefined;
}

/**
 * The web client's message features beside ChatModel (which keeps the
 * threads and their messages): replying, editing, deleting, reacting,
 * jumping to a message in context, and search. Changes that arrive from the
 * SDK (`message_changed`, `message_hidden`) update the messages on screen
 * in place; history from the server already has them in their latest state.
 */
export class MessageFeatures {
  /** Per thread: the message being answered or edited in the composer. */
  readonly modes = new Map<number, ComposerMode>();
  /**
   * Per thread, after a jump to an older message: the seq after which newer
   * messages are not loaded yet (a "Show newer messages" button stands there).
   */
  readonly newerAfter = new Map<number, number>();
  /** The own group message whose "Message info" is open (message-info.tsx). */
  info: ClientMessage | undefined;
  /** The message a jump or a search result brought into view, drawn highlighted. */
  highlighted: { readonly threadId: number; readonly messageId: number } | undefined;
  /** Messages quoted by replies that are not in the loaded pages, fetched once each. */
  private readonly quoted = new Map<number, ClientMessage | 'loading' | 'missing'>();
  search: SearchState | undefined;
  private searchRun = 0;

  constructor(private readonly model: ChatModel, private readonly changed: () => void) {
    model.client.on('message_changed', (event) => this.onChanged(event));
    model.client.on('message_hidden', (event) => this.onHidden(event));
  }

  private get me(): number {
    return this.model.session.user.id;
  }

  // ---- the composer ----

  reply(message: ClientMessage): void {
    this.modes.set(message.thread_id, { kind: 'reply', message });
    this.changed();
  }

  /** Starts editing one of the user's own messages: the composer takes its text. */
  edit(message: ClientMessage): void {
    if (!this.canEdit(message)) return;
    this.modes.set(message.thread_id, { kind: 'edit', message });
    this.changed();
  }

  /** The user's newest message that can be edited (ArrowUp in an empty composer). */
  lastEditable(threadId: number): ClientMessage | undefined {
    const messages = this.model.messages.get(threadId) ?? [];
    for (let i = messages.length - 1; i >= 0; i -= 1) {
      const message = messages[i];
      if (message && this.canEdit(message)) return message;
    }
    return undefined;
  }

  cancel(threadId: number): void {
    if (this.modes.delete(threadId)) this.changed();
  }

  /**
   * What Send does: saves the edit being made, or sends a new message (an
   * answer to the quoted one when replying) with the mentions its text
   * names among the thread's members. Resolves false when an edit was
   * refused (the error line says why; the composer gives the text back).
   */
  async submit(threadId: number, text: string, attachments: readonly UploadedAttachment[]): Promise<boolean> {
    const mode = this.modes.get(threadId);
    this.modes.delete(threadId);
    const mentions = parseMentions(text, this.membersOf(threadId));
    if (mode?.kind === 'edit') {
      if (text === plainText(mode.message)) {
        this.changed();
        return true;
      }
      return this.model.act(() => this.model.client.edit(mode.message.id, { text }, mentions.length > 0 ? { mentions } : {}), { refresh: false });
    }
    await this.model.send(threadId, text, attachments, {
      ...(mode?.kind === 'reply' ? { replyTo: mode.message.id } : {}),
      ...(mentions.length > 0 ? { mentions } : {}),
    });
    return true;
  }

  // ---- the menu's actions ----

  canEdit(message: ClientMessage): boolean {
    return message.sender_id === this.me && !message.deleted && !message.change && plainText(message) !== undefined && (message.kind === 'text' || message.e2e?.status === 'ok');
  }

  /** Delete for everyone: the author, or an owner or admin of a group. */
  canDeleteForEveryone(message: ClientMessage): boolean {
    if (message.deleted || message.kind === 'system') return false;
    if (message.sender_id === this.me) return true;
    const thread = this.model.threads.find((t) => t.id === message.thread_id);
    return thread?.kind === 'group' && (thread.role === 'owner' || thread.role === 'admin');
  }

  /** "Message info" (who has read it): the user's own messages in groups; in a direct chat the ticks say it all. */
  canShowInfo(message: ClientMessage): boolean {
    if (message.sender_id !== this.me || message.deleted || message.kind === 'system') return false;
    return this.model.threads.find((t) => t.id === message.thread_id)?.kind === 'group';
  }

  showInfo(message: ClientMessage | undefined): void {
    this.info = message;
    this.changed();
  }

  async remove(message: ClientMessage, forEveryone: boolean): Promise<void> {
    if (this.modes.get(message.thread_id)?.message.id === message.id) this.modes.delete(message.thread_id);
    const done = await this.model.act(() => this.model.client.deleteMessage(message.id, { forEveryone }), { refresh: false });
    // Gone from this page at once (the SDK's event, when it comes, finds it gone or already a tombstone).
    if (done) this.onChanged({ threadId: message.thread_id, messageId: message.id, change: { type: 'delete', message_id: message.id } }, forEveryone ? 'delete' : 'hide');
  }

  /** Switches the user's `emoji` on the message on or off. */
  async toggleReaction(message: ClientMessage, emoji: string): Promise<void> {
    const on = !(message.reactions?.some((r) => r.emoji === emoji && r.user_ids.includes(this.me)) ?? false);
    await this.model.act(() => this.model.client.react(message.id, emoji, on), { refresh: false });
  }

  // ---- replies and jumps ----

  /** The message a reply quotes: from the loaded pages, or fetched once (undefined while it loads or when it cannot be had). */
  quote(threadId: number, messageId: number): ClientMessage | 'missing' | undefined {
    const loaded = this.find(threadId, messageId);
    if (loaded) return loaded;
    const known = this.quoted.get(messageId);
    if (known === 'loading') return undefined;
    if (known) return known;
    this.quoted.set(messageId, 'loading');
    void this.model.client.jump(messageId, 1).then(
      (page) => this.quoted.set(messageId, page.messages.find((m) => m.id === messageId) ?? 'missing'),
      () => this.quoted.set(messageId, 'missing'),
    ).finally(() => this.changed());
    return undefined;
  }

  /**
   * Shows the message in its thread, highlighted: opens the thread, and when
   * the message is not among the loaded ones, loads the page around it with
   * the SDK's `jump` in place of what was shown (newer messages then load
   * with "Show newer messages").
   */
  async jumpTo(threadId: number, messageId: number): Promise<void> {
    if (this.model.openThread !== threadId) await this.model.open(threadId);
    if (!this.find(threadId, messageId)) {
      const ok = await this.model.act(async () => {
        const page = await this.model.client.jump(messageId, JUMP_PAGE);
        this.model.messages.set(threadId, [...page.messages].sort((a, b) => a.seq - b.seq));
        this.model.hasOlder.set(threadId, page.has_more_before);
        const last = page.messages.at(-1);
        if (page.has_more_after && last) this.newerAfter.set(threadId, last.seq);
        else this.newerAfter.delete(threadId);
      }, { refresh: false });
      if (!ok) return;
    }
    this.highlighted = { threadId, messageId };
    this.changed();
  }

  /** The next page after a jump's, up to the newest. */
  async loadNewer(threadId: number): Promise<void> {
    const after = this.newerAfter.get(threadId);
    if (after === undefined) return;
    await this.model.act(async () => {
      const page = await this.model.client.history(threadId, { after }, JUMP_PAGE);
      const last = page.messages.at(-1);
      if (page.has_more_after && last) this.newerAfter.set(threadId, last.seq);
      else this.newerAfter.delete(threadId);
      this.model.add(threadId, page.messages);
    }, { refresh: false });
  }

  /** Back from a jump to the newest messages, in place of the jump's pages. */
  async toLatest(threadId: number): Promise<void> {
    await this.model.act(async () => {
      const page = await this.model.client.history(threadId, 'latest', JUMP_PAGE);
      this.newerAfter.delete(threadId);
      this.highlighted = undefined;
      this.model.messages.set(threadId, []);
      this.model.hasOlder.set(threadId, page.has_more_before);
      this.model.add(threadId, page.messages);
    }, { refresh: false });
  }

  // ---- search ----

  /** Searches every thread the user can see (E2E ones on this device): the first page. */
  async runSearch(query: string): Promise<void> {
    const trimmed = query.trim();
    const run = ++this.searchRun;
    if (!trimmed) {
      this.search = undefined;
      this.changed();
      return;
    }
    this.search = { query: trimmed, results: [], nextCursor: null, loading: true, error: undefined };
    this.changed();
    await this.fetchResults(run, trimmed, undefined);
  }

  async moreResults(): Promise<void> {
    const state = this.search;
    if (!state?.nextCursor || state.loading) return;
    this.search = { ...state, loading: true };
    this.changed();
    await this.fetchResults(this.searchRun, state.query, state.nextCursor);
  }

  closeSearch(): void {
    this.searchRun += 1;
    this.search = undefined;
    this.changed();
  }

  private async fetchResults(run: number, query: string, cursor: string | undefined): Promise<void> {
    try {
      const page = await this.model.client.search(query, { limit: SEARCH_PAGE, ...(cursor ? { cursor } : {}) });
      if (run !== this.searchRun) return;
      const before = cursor ? (this.search?.results ?? []) : [];
      this.search = { query, results: [...before, ...page.results], nextCursor: page.nextCursor, loading: false, error: undefined };
    } catch (error) {
      if (run !== this.searchRun) return;
      this.search = { query, results: this.search?.results ?? [], nextCursor: null, loading: false, error: error instanceof Error ? error.message : String(error) };
    }
    this.changed();
  }

  // ---- changes from the SDK ----

  /** An edit, delete or reaction: the message on screen (and the list's preview, a quote of it, its search hit) takes it. */
  private onChanged(event: Pick<MessageChange, 'threadId' | 'messageId' | 'change' | 'message'> & { by?: MessageChange['by'] }, local?: 'delete' | 'hide'): void {
    if (local === 'hide') return this.onHidden(event);
    const { change } = event;
    // The SDK's copy when it holds the message; otherwise the change applied here to what is on screen.
    const update = (message: ClientMessage): ClientMessage => event.message ?? changedMessage(message, change, event.by);
    const list = this.model.messages.get(event.threadId);
    const index = list?.findIndex((m) => m.id === event.messageId) ?? -1;
    if (list && index >= 0) {
      const next = [...list];
      next[index] = update(list[index] as ClientMessage);
      this.model.messages.set(event.threadId, next);
    }
    const latest = this.model.latest.get(event.threadId);
    if (latest?.id === event.messageId) this.model.latest.set(event.threadId, update(latest));
    const quoted = this.quoted.get(event.messageId);
    if (typeof quoted === 'object') this.quoted.set(event.messageId, update(quoted));
    // A hit deleted for everyone goes; an edited one shows its new text, unmarked (the search is not run again).
    if (this.search) this.search = { ...this.search, results: hitsAfterChange(this.search.results, event.messageId, change, update) };
    for (const [threadId, mode] of this.modes) {
      if (mode.message.id === event.messageId && change.type === 'delete') this.modes.delete(threadId);
    }
    this.changed();
  }

  /** Deleted for me (here or on another of the user's devices): gone from the thread. */
  private onHidden(event: MessageHidden): void {
    const list = this.model.messages.get(event.threadId);
    if (list) this.model.messages.set(event.threadId, list.filter((m) => m.id !== event.messageId));
    if (this.search) this.search = { ...this.search, results: this.search.results.filter((hit) => hit.message.id !== event.messageId) };
    this.changed();
  }

  private find(threadId: number, messageId: number): ClientMessage | undefined {
    return this.model.messages.get(threadId)?.find((m) => m.id === messageId);
  }

  /** The thread's members as users (a direct chat's two people before its members load). */
  membersOf(threadId: number): UserJson[] {
    const members = this.model.members.get(threadId)?.map((member) => member.user);
    if (members && members.length > 0) return members;
    const thread = this.model.threads.find((t) => t.id === threadId);
    const me = this.model.session.user;
    return thread?.peer ? [me, thread.peer] : [me];
  }
}
