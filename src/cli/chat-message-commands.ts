import { type ChatClient, type MemberJson, type ThreadJson, parseMentions } from '../client/node.js';
import { hasReacted, searchResultLine } from './chat-message-lines.js';
import type { NumberedMessage } from './chat-numbers.js';
import type { Renderer } from './chat-render.js';

/** How a reply goes out: the session's send (its outbox handling and error lines). */
export type SendFn = (thread: ThreadJson, body: unknown, options: { readonly replyTo?: number; readonly mentions?: readonly number[] }) => Promise<undefined>;

const SEARCH_LIMIT = 20;

/**
 * `/reply`, `/edit`, `/delete`, `/react`, `/info` and `/search` of `chatd chat`. N is
 * the number printed beside each message (chat-numbers.ts). Mentions are
 * parsed from `@username` among the thread's members (anyone else's name
 * stays plain text, so it cannot get the line refused).
 */
export class MessageCommands {
  /** The last search, while it has more results: `/search` without words shows the next page. */
  private lastSearch: { readonly query: string; readonly cursor: string } | undefined;
  /** Each thread's members, fetched once per run (and again once the thread's members change). */
  private readonly members = new Map<number, readonly MemberJson[]>();

  constructor(
    private readonly client: ChatClient,
    private readonly renderer: Renderer,
    private readonly print: (line: string) => void,
    private readonly send: SendFn,
  ) {}

  /** Runs the command if it is one of these; false otherwise. `line`: the whole line typed (the text after N is taken as typed). */
  async run(name: string, args: readonly string[], line: string): Promise<boolean> {
    const numberAndText = (usage: string): [NumberedMessage, string] => {
      const match = /^\S+\s+(\S+)\s+(\S.*)$/s.exec(line);
      if (!match) throw new Error(`usage: ${usage}`);
      return [this.find(match[1] as string), (match[2] as string).trim()];
    };
    switch (name) {
      case '/reply': {
        const [target, text] = numberAndText('/reply N TEXT');
        const thread = await this.threadOf(target);
        await this.send(thread, { text }, { replyTo: target.id, mentions: await this.mentions(thread.id, text) });
        return true;
      }
      case '/edit': {
        const [target, text] = numberAndText('/edit N TEXT');
        if (target.message && target.message.sender_id !== this.client.user?.id) throw new Error(`message ${target.number} is not yours: only its author can edit it`);
        this.background(`message ${target.number} not edited`, this.client.edit(target.id, { text }, { mentions: await this.mentions(target.threadId, text) }));
        return true;
      }
      case '/delete': {
        const forMe = args[1] === 'me';
        if (args.length < 1 || args.length > 2 || (args.length === 2 && !forMe)) throw new Error('usage: /delete N [me]');
        const target = this.find(args[0] as string);
        if (!forMe) return this.background(`message ${target.number} not deleted`, this.client.deleteMessage(target.id, { forEveryone: true }));
        // The SDK tells message_hidden at once (and the user's other devices by the server): the renderer prints it.
        await this.client.deleteMessage(target.id, { forEveryone: false });
        return true;
      }
      case '/react': {
        if (args.length !== 2) throw new Error('usage: /react N EMOJI');
        const target = this.find(args[0] as string);
        const emoji = args[1] as string;
        const on = !(target.message && hasReacted(target.message, emoji, this.client.user?.id));
        return this.background(`no reaction to message ${target.number}`, this.client.react(target.id, emoji, on));
      }
      case '/info':
        return this.info(this.find(single(args, '/info N')));
      case '/search': {
        const query = args.join(' ').trim();
        if (query !== '') return this.search(query, undefined);
        if (!this.lastSearch) throw new Error('usage: /search WORDS (then /search alone for more results)');
        return this.search(this.lastSearch.query, this.lastSearch.cursor);
      }
      default:
        return false;
    }
  }

  /** The user ids `text` mentions among the thread's current members (none for a thread this user cannot see). */
  async mentions(threadId: number, text: string): Promise<number[]> {
    if (!text.includes('@')) return [];
    return parseMentions(text, await this.membersOf(threadId));
  }

  /** Its usernames learned on the way. */
  private async membersOf(threadId: number): Promise<readonly MemberJson[]> {
    let members = this.members.get(threadId);
    if (!members) {
      members = (await this.client.thread(threadId)).members;
      this.members.set(threadId, members);
      for (const member of members) this.renderer.names.learn(member.user);
    }
    return members;
  }

  /** Who has read message N, whose devices have it, who is still waiting for it (the server's answer, by the members' cursors). */
  private async info(target: NumberedMessage): Promise<true> {
    const seq = (target.message ?? this.client.cachedMessage(target.id) ?? (await this.client.jump(target.id, 1)).messages.find((m) => m.id === target.id))?.seq;
    if (seq === undefined) throw new Error(`message ${target.number} is not one you can see any more`);
    const receipts = await this.client.receipts(target.threadId, seq);
    await this.membersOf(target.threadId);
    const names = (ids: readonly number[]): string => (ids.length === 0 ? 'nobody' : ids.map((id) => this.renderer.names.name(id)).join(', '));
    await this.renderer.lines(async () => [
      `message ${target.number}:`,
      `  read by: ${names(receipts.read)}`,
      `  delivered to: ${names(receipts.delivered)}`,
      `  waiting: ${names(receipts.pending)}`,
    ]);
    return true;
  }

  /** Members changed (an /add, an event): asked again at the next mention. */
  forgetMembers(threadId: number): void {
    this.members.delete(threadId);
  }

  private async search(query: string, cursor: string | undefined): Promise<true> {
    const { results, nextCursor } = await this.client.search(query, { limit: SEARCH_LIMIT, ...(cursor ? { cursor } : {}) });
    this.lastSearch = nextCursor ? { query, cursor: nextCursor } : undefined;
    const renderer = this.renderer;
    await renderer.lines(async () => {
      if (results.length === 0) return [`no messages found for "${query}"`];
      const lines = [];
      for (const result of results) {
        const { message } = result;
        const number = renderer.numbers.remember(message);
        const label = await renderer.label(message.thread_id, [message.sender_id]);
        lines.push(searchResultLine(number, label, renderer.names.name(message.sender_id), message.created_at, result.snippet, result.highlights));
      }
      const more = nextCursor ? ['(more results: /search)'] : [];
      return [`${results.length} ${cursor ? 'more ' : ''}result(s) for "${query}":`, ...lines, ...more];
    });
    return true;
  }

  /**
   * A change goes out through the SDK's outbox (retried after a reconnect, kept
   * for the next run): the next line need not wait for its ack, and its
   * notice follows when it comes back. A refusal is printed when it comes.
   */
  private background(what: string, change: Promise<unknown>): true {
    change.catch((error: unknown) => this.print(`error: ${what}: ${(error as Error).message}`));
    return true;
  }

  private find(text: string): NumberedMessage {
    if (!/^\d+$/.test(text)) throw new Error(`${text} is not a message number (the number in brackets beside a message)`);
    const found = this.renderer.numbers.find(Number(text));
    if (!found) throw new Error(`no message ${text} shown yet`);
    return found;
  }

  private async threadOf(target: NumberedMessage): Promise<ThreadJson> {
    return this.client.cachedThreads().find((thread) => thread.id === target.threadId) ?? (await this.client.thread(target.threadId)).thread;
  }
}

function single(args: readonly string[], usage: string): string {
  if (args.length !== 1) throw new Error(`usage: ${usage}`);
  return args[0] as string;
}
