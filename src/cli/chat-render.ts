import { type Interface, createInterface } from 'node:readline';
import type { ChatClient, ClientAttachment, ClientMessage, MessageChange, MessageJson, PresenceJson, StateChange, ThreadJson, UserJson } from '../client/node.js';
import { type Line, type Segment, changeNotice, lineText, markMentionsOf, reactionsText, replyText } from './chat-message-lines.js';
import { MessageNumbers } from './chat-numbers.js';
import { CliError } from './common.js';

/**
 * How `chatd chat` puts things into words and onto the terminal: one plain
 * line each, stable enough for scripts and tests to wait for.
 */

/**
 * Standard input as lines, and output lines written above what is being typed.
 * One reader for the whole run: lines piped in after the password wait in it
 * instead of being lost between two readers.
 */
export class Terminal {
  private readonly rl: Interface;
  private readonly iterator: AsyncIterator<string>;

  constructor(readonly interactive: boolean) {
    this.rl = createInterface({ input: process.stdin, terminal: interactive, ...(interactive ? { output: process.stdout, prompt: '> ' } : {}) });
    this.rl.on('SIGINT', () => this.rl.close()); // Ctrl-C ends the input like Ctrl-D (readline would only pause)
    this.iterator = this.rl[Symbol.asyncIterator](); // made at once, so no line arrives before it
  }

  /** The next line; undefined at the end of input. */
  async next(): Promise<string | undefined> {
    const result = await this.iterator.next();
    return result.done ? undefined : result.value;
  }

  /** The first line, read the way readPassword reads a pipe. */
  async password(): Promise<string> {
    const line = (await this.next())?.replace(/\r$/, '') ?? '';
    if (line === '') throw new CliError('no password on standard input (pipe it in, or run on a terminal to be asked)');
    return line;
  }

  /**
   * Prints one line of output; what others wrote (names, message text, file
   * names) cannot drive the terminal. Marked parts (a mention of the reader,
   * a search hit) are bold on a terminal, `**so**` in a pipe.
   */
  print(text: Line): void {
    const safe = typeof text === 'string' ? printable(text) : text.map((segment): Segment => (typeof segment === 'string' ? printable(segment) : { mark: printable(segment.mark) }));
    const line = lineText(safe, this.interactive ? (marked) => `\x1b[1;33m${marked}\x1b[0m` : undefined);
    if (!this.interactive) return void process.stdout.write(`${line}\n`);
    process.stdout.write(`\r\x1b[K${line}\n`);
    this.rl.prompt(true);
  }

  prompt(): void {
    if (this.interactive) this.rl.prompt();
  }

  close(): void {
    this.rl.close();
  }
}

/**
 * Text as it may reach a terminal: control characters (escape sequences that move the cursor, retitle
 * the window or rewrite earlier lines; a carriage return that overprints) and the bidirectional
 * overrides that make a file name read backwards become U+FFFD. Newlines and tabs stay.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '\ufffd');
}

const TYPING_QUIET_MS = 3000;
/** `/save N` reaches this far back. */
const KEPT_ATTACHMENTS = 200;

/**
 * Prints what the client reports (messages, presence, typing) and pages of
 * history, in arrival order: a line waiting for a thread or a name to be
 * looked up keeps its place in the queue.
 */
export class Renderer {
  readonly names = new Names();
  /** Set when the session ends: what fails then (a thread refresh cut short) is not worth a warning. */
  closing = false;
  private output: Promise<void> = Promise.resolve();
  /** Users looked up once in vain are not looked up again for every message. */
  private readonly triedUsers = new Set<number>();
  private readonly typingShownAt = new Map<number, number>();
  /** Attachments in the order they were shown, for `/save N`. */
  private readonly attachments: ClientAttachment[] = [];
  /** The number beside each message, for /edit, /delete, /reply, /react. */
  readonly numbers = new MessageNumbers();

  constructor(
    private readonly client: ChatClient,
    private readonly terminal: Terminal,
  ) {
    client.on('message', (message) => void this.show(() => this.message(message)));
    client.on('message_changed', (event) => void this.show(() => this.changed(event)));
    client.on('message_hidden', ({ threadId, messageId }) =>
      void this.show(async () => [`[${await this.label(threadId, [])}] * message ${this.numbers.numberOf(messageId, threadId)} deleted for you`]),
    );
    client.on('thread', ({ thread }) => this.names.learnThread(thread));
    client.on('presence', (presence) => {
      if (presence.user_id !== client.user?.id) void this.show(async () => [`* ${presenceLine(await this.nameOf(presence.user_id), presence)}`]);
    });
    client.on('typing', ({ thread_id: threadId, user_id: userId }) => {
      const now = Date.now();
      if (userId === client.user?.id || now - (this.typingShownAt.get(userId) ?? 0) < TYPING_QUIET_MS) return;
      this.typingShownAt.set(userId, now);
      void this.show(async () => [`[${await this.label(threadId, [userId])}] * ${this.names.name(userId)} is typing…`]);
    });
    client.on('reset', () => terminal.print('* the server was restored from a backup: starting afresh'));
    client.on('error', (error) => {
      if (!this.closing) process.stderr.write(`chatd: warning: ${error.message}\n`);
    });
  }

  /** Prints a page of history after what is queued; `empty` when it has no message. */
  page(messages: readonly MessageJson[], more: boolean, header: string[], empty: string): Promise<void> {
    return this.show(async () => {
      const lines: Line[] = [...header, ...(messages.length === 0 ? [empty] : [])];
      for (const message of messages) lines.push(...(await this.message(message)));
      return more ? [...lines, '(older messages: /more)'] : lines;
    });
  }

  /** Resolves once every queued line is out. */
  idle(): Promise<void> {
    return this.output;
  }

  /** The thread's label, once the thread and `userIds` are known: asks the server for the thread (and its members) if not. */
  async label(threadId: number, userIds: readonly number[]): Promise<string> {
    let thread = this.client.cachedThreads().find((known) => known.id === threadId);
    const unknown = userIds.filter((id) => !this.names.has(id) && !this.triedUsers.has(id));
    if (!thread || unknown.length > 0) {
      for (const id of unknown) this.triedUsers.add(id);
      const reply = await this.client.thread(threadId).catch(() => undefined); // if it fails: ids instead of names
      for (const member of reply?.members ?? []) this.names.learn(member.user);
      thread = reply?.thread ?? thread;
    }
    return thread ? threadLabel(thread) : `#${threadId}`;
  }

  /** Lines printed after what is queued (search results, say). */
  lines(render: () => Promise<Line[]>): Promise<void> {
    return this.show(render);
  }

  /**
   * The message's line, `(12) [@bob] bob: text (edited)` (system messages
   * unnumbered), then the quoted reply, one line per attachment (a signed
   * link to a plaintext one; `/save` fetches any), and the reactions.
   */
  private async message(message: MessageJson): Promise<Line[]> {
    if (message.change) return []; // a change row: the SDK reports it as message_changed
    const label = await this.label(message.thread_id, userIdsIn(message));
    if (message.kind === 'system') return [messageLine(label, message, this.names)];
    const number = this.numbers.remember(message as ClientMessage);
    const lines: Line[] = [[`(${number}) [${label}] `, ...messageSegments(message, this.names, this.client.user?.username)]];
    if (message.reply_to !== undefined) {
      const target = this.numbers.message(message.reply_to) ?? this.client.cachedMessage(message.reply_to);
      const quoted = target && { text: messageBodyText(target, this.names), deleted: target.deleted === true };
      lines.push(`  ${replyText(this.numbers.numberOf(message.reply_to, message.thread_id), quoted)}`);
    }
    for (const attachment of attachmentsOf(message)) {
      this.attachments.push(attachment);
      if (this.attachments.length > KEPT_ATTACHMENTS) this.attachments.shift();
      if (attachment.encrypted || !attachment.name) {
        lines.push(`  ${attachmentLabel(attachment)}`);
        continue;
      }
      const link = await this.client.attachmentLinks(attachment.id).then(
        (links) => links.url,
        (error: unknown) => `(no link: ${(error as Error).message})`,
      );
      lines.push(`  ${attachmentLabel(attachment)} ${link}`);
    }
    const reactions = reactionsText(message.reactions);
    if (reactions !== '') lines.push(`  ${reactions}`);
    return lines;
  }

  /** A change that arrived live: `[@bob] * bob edited message 12: the new text` (the target's new state kept for /react). */
  private async changed(event: MessageChange): Promise<Line[]> {
    if (event.message) this.numbers.remember(event.message);
    const number = this.numbers.numberOf(event.messageId, event.threadId);
    const actor = event.by.sender_id;
    const label = await this.label(event.threadId, [actor]);
    const { change } = event;
    const notice = changeNotice(this.names.name(actor), change, number);
    if (change.type === 'edit') {
      // The edit message carries the new body (decrypted in an encrypted thread).
      const edited = event.message && !event.message.deleted ? event.message : event.by;
      return [[`[${label}] ${notice}: `, ...markMentionsOf(messageBodyText(edited, this.names), this.client.user?.username)]];
    }
    const reactions = change.type === 'reaction' && event.message ? reactionsText(event.message.reactions) : '';
    return [`[${label}] ${notice}${reactions === '' ? '' : ` (now ${reactions})`}`];
  }

  /** The `back`-th attachment shown, counting from the newest (1). */
  shownAttachment(back: number): ClientAttachment | undefined {
    return this.attachments[this.attachments.length - back];
  }

  /** A user seen in a presence event: a thread peer or a contact, most likely. */
  private async nameOf(userId: number): Promise<string> {
    for (const thread of this.client.cachedThreads()) this.names.learnThread(thread);
    if (!this.names.has(userId) && !this.triedUsers.has(userId)) {
      this.triedUsers.add(userId);
      for (const contact of await this.client.contacts().catch(() => [])) this.names.learn(contact.user);
    }
    return this.names.name(userId);
  }

  private show(render: () => Promise<Line[]>): Promise<void> {
    this.output = this.output.then(render).then(
      (lines) => lines.forEach((line) => this.terminal.print(line)),
      (error: unknown) => this.terminal.print(`error: ${(error as Error).message}`),
    );
    return this.output;
  }
}

/** Usernames by user id, learned from thread peers, member lists and contacts. */
export class Names {
  private readonly byId = new Map<number, string>();

  learn(user: UserJson | null | undefined): void {
    if (user) this.byId.set(user.id, user.username);
  }

  learnThread(thread: ThreadJson): void {
    this.learn(thread.peer);
  }

  has(userId: number): boolean {
    return this.byId.has(userId);
  }

  /** The username, or `user#ID` for someone never seen (a removed member, say). */
  name(userId: number): string {
    return this.byId.get(userId) ?? `user#${userId}`;
  }
}

export const HELP = [
  'commands:',
  '  /threads                 list your threads (numbers are for /open)',
  '  /open N|@USER|#ID        open a thread and show its last messages; then plain lines are sent there',
  '  /dm USER                 open (or start) the direct thread with USER',
  '  /group TITLE USER...     start a group ("quote" a title with spaces)',
  '  /add USER... /remove USER /leave    change the open group',
  '  /more                    older messages of the open thread',
  '  /read                    mark the open thread read',
  '  /file PATH [TEXT]        send a file (encrypted in an encrypted thread), with an optional caption',
  '  /save N PATH             save the Nth newest attachment shown (1: the last) to PATH',
  '  /reply N TEXT            answer message N (the number in brackets beside each message)',
  '  /edit N TEXT             change the text of your message N',
  '  /delete N [me]           delete message N for everyone (yours; any, as a group admin), or only for you',
  '  /react N EMOJI           add your EMOJI to message N, or take it back',
  '  /info N                  who has read message N, whose devices have it, who is still waiting',
  '  /search WORDS            search the messages you can see (numbered for the commands above); /search alone: more',
  '  /who  /contacts  /contact USER      presence, your contacts, add a contact',
  '  /logout                  log this device out and forget it here',
  '  /quit                    leave (also: end of input); unsent messages are kept',
  '  //text                   send a line that starts with /',
];

export const SHORT_HELP = 'commands: /threads /open /dm /group /add /remove /leave /more /read /file /save /reply /edit /delete /react /info /search /who /contacts /contact /verify /devices /approve /share-history /logout /quit (/help explains)';

/** `@bob` for a direct thread, the title for a group; `(left)` once the user is no longer a member. */
export function threadLabel(thread: ThreadJson): string {
  const base = thread.kind === 'direct' ? `@${thread.peer?.username ?? `#${thread.id}`}` : (thread.title ?? `group #${thread.id}`);
  return thread.member ? base : `${base} (left)`;
}

/** `2. @bob (1 unread) - bob: see you` in /threads. */
export function threadLine(index: number, thread: ThreadJson, names: Names): string {
  const unread = thread.unread > 0 ? ` (${thread.unread} unread)` : '';
  const last = thread.last_message ? ` - ${shorten(messageText(thread.last_message, names), 60)}` : '';
  return `${index + 1}. ${threadLabel(thread)}${unread}${last}`;
}

/** `[label] bob: text`, or `[label] * alice added bob` for a group change. */
export function messageLine(label: string, message: MessageJson, names: Names): string {
  return `[${label}] ${messageText(message, names)}`;
}

/** The message without its thread: for a line, and for the preview in /threads. */
export function messageText(message: MessageJson, names: Names): string {
  if (message.kind === 'system') return `* ${describeSystem(message, names)}`;
  return `${names.name(message.sender_id)}: ${messageBodyText(message, names)}`;
}

/** `bob: text (edited)`, the reader's own `@name` marked; `bob: [deleted]`. */
export function messageSegments(message: MessageJson, names: Names, me: string | undefined): Segment[] {
  const sender = `${names.name(message.sender_id)}: `;
  if (message.deleted) return [`${sender}[deleted]`];
  const text = messageBodyText(message, names);
  const readable = message.kind !== 'e2e' || (message as ClientMessage).e2e?.status === 'ok';
  return [sender, ...(readable ? markMentionsOf(text, me) : [text]), ...(message.edited_at !== undefined ? [' (edited)'] : [])];
}

/** What a content message says, without its sender: its text, its files, `[deleted]`, or why it cannot be read. */
export function messageBodyText(message: MessageJson, names: Names): string {
  if (message.kind === 'system') return describeSystem(message, names);
  if (message.deleted) return '[deleted]';
  const e2e = (message as ClientMessage).e2e;
  if (e2e && e2e.status !== 'ok') return `(encrypted message: ${e2e.status})`;
  // A client made without encryption gets the envelope as it is: ciphertext is no use on a screen.
  if (message.kind === 'e2e' && !e2e) return '(encrypted message: run chatd chat with --encryption to read it)';
  const attachments = attachmentsOf(message);
  if (attachments.length > 0 && (message.body === null || message.body === undefined)) {
    return attachments.map((attachment) => `[${attachmentKind(attachment)} ${attachment.name ?? attachment.id}]`).join(' ');
  }
  return bodyText(message.body);
}

/** What the SDK gives of a message's attachments (the server's, or the decrypted envelope's). */
export function attachmentsOf(message: MessageJson): readonly ClientAttachment[] {
  return (message as ClientMessage).attachments ?? [];
}

/** `[photo cat.jpg 1.2 MB]`; `[photo cat.jpg 1.2 MB (encrypted)]` for one sealed in an encrypted message (no link: the server has only ciphertext). */
export function attachmentLabel(attachment: ClientAttachment): string {
  const size = attachment.size === undefined ? '' : ` ${humanSize(attachment.size)}`;
  return `[${attachmentKind(attachment)} ${attachment.name ?? attachment.id}${size}${attachment.encrypted ? ' (encrypted)' : ''}]`;
}

function attachmentKind(attachment: ClientAttachment): string {
  const mime = attachment.mime ?? '';
  if (mime.startsWith('image/')) return 'photo';
  if (mime.startsWith('video/')) return 'video';
  if (mime.startsWith('audio/')) return 'audio';
  return 'file';
}

/** Decimal units, one decimal: `1.2 MB`. */
export function humanSize(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = bytes / 1000;
  let unit = 0;
  while (value >= 999.95 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** Every user a message names: its sender, those it mentions and, for a group change, the users it names. */
export function userIdsIn(message: MessageJson): number[] {
  const ids = [message.sender_id, ...(message.mentions ?? [])];
  if (message.kind !== 'system' || !isRecord(message.body)) return ids;
  const { user_ids: userIds, user_id: userId, new_owner: newOwner } = message.body;
  if (Array.isArray(userIds)) ids.push(...userIds.filter((id): id is number => typeof id === 'number'));
  for (const id of [userId, newOwner]) if (typeof id === 'number') ids.push(id);
  return ids;
}

export function presenceLine(name: string, presence: PresenceJson | null): string {
  if (!presence) return `${name}: presence not shared with you`;
  if (presence.online) return `${name} is online`;
  return presence.last_active_at === null ? `${name} is offline` : `${name} is offline (last seen ${clock(presence.last_active_at)})`;
}

/** The lines worth showing for a connection change, or undefined for the quiet ones (connecting, syncing). */
export function stateLine(change: StateChange): string | undefined {
  const pending = change.pending > 0 ? ` (${change.pending} pending)` : '';
  if (change.state === 'offline') return `offline, retrying in ${((change.retry_in_ms ?? 0) / 1000).toFixed(1)} s${pending}`;
  if (change.state === 'online') return `online${pending}`;
  return undefined;
}

/** Splits a command line into words; "double" or 'single' quotes keep spaces in one word. */
export function splitArguments(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((match) => match[1] ?? match[2] ?? match[3] ?? '');
}

/** Local wall-clock time, HH:MM. */
export function clock(ms: number): string {
  const date = new Date(ms);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

function shorten(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ');
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** `{text}` bodies as their text; anything else (another app's JSON, e2e ciphertext) as JSON. */
function bodyText(body: unknown): string {
  if (isRecord(body) && typeof body.text === 'string' && Object.keys(body).length === 1) return body.text;
  return JSON.stringify(body);
}

/** docs/protocol.md, "System messages": `sender_id` is who acted. */
function describeSystem(message: MessageJson, names: Names): string {
  const body = message.body;
  const actor = names.name(message.sender_id);
  if (!isRecord(body)) return `${actor}: ${JSON.stringify(body)}`;
  const user = (id: unknown): string => (typeof id === 'number' ? names.name(id) : '?');
  const users = (ids: unknown): string => (Array.isArray(ids) && ids.length > 0 ? ids.map(user).join(', ') : 'nobody');
  switch (body.event) {
    case 'group_created':
      return `${actor} created the group "${String(body.title)}"${Array.isArray(body.user_ids) && body.user_ids.length > 0 ? ` with ${users(body.user_ids)}` : ''}`;
    case 'members_added':
      return `${actor} added ${users(body.user_ids)}`;
    case 'member_removed':
      return `${actor} removed ${user(body.user_id)}`;
    case 'member_left':
      return `${user(body.user_id)} left${body.new_owner === undefined ? '' : `; ${user(body.new_owner)} is now the owner`}`;
    case 'renamed':
      return `${actor} renamed the group to "${String(body.title)}"`;
    case 'role_changed':
      return `${actor} made ${user(body.user_id)} ${String(body.role)}`;
    case 'e2e_required':
      return `${actor} turned on end-to-end encryption: only encrypted messages from now on`;
    default:
      return `${actor}: ${JSON.stringify(body)}`;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

