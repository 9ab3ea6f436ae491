import { type ChatClient, ClientError, type ClientMessage, type MessageJson, type StateChange, type ThreadJson, type UploadedAttachment, newClientMsgId } from '../client/node.js';
import { HELP, Renderer, SHORT_HELP, type Terminal, presenceLine, splitArguments, stateLine, threadLabel, threadLine, userIdsIn } from './chat-render.js';
import { ChatEncryption, ENCRYPTION_HELP } from './chat-e2e.js';
import { saveAttachment, uploadFile } from './chat-file.js';
import { MessageCommands } from './chat-message-commands.js';
import { CliError } from './common.js';

const PAGE = 20;
/** How long the end of input waits for unsent messages; the rest stay in the store for the next run. */
const DRAIN_MS = 5000;

/** The server no longer takes the saved token: the caller deletes it, so the next run logs in. */
export class LoginRefused extends CliError {}

export type Outcome = 'quit' | 'logout';

/** One run over a ChatClient: prints what arrives, runs what is typed, one line at a time and in order. */
export class ChatSession {
  private open: ThreadJson | undefined;
  /** The oldest seq shown of the open thread, where /more goes on. */
  private oldestSeq = 0;
  /** Thread ids in the order /threads last showed them, for `/open N`. */
  private listed: number[] = [];
  private readonly sends = new Set<Promise<void>>();
  private readonly renderer: Renderer;
  private lastState: StateChange['state'] = 'stopped';
  private wasOffline = false;
  private connected = false;
  private loggingOut = false;
  private wake: (() => void) | undefined;
  private markConnected: () => void = () => {};
  private readonly connection = new Promise<void>((resolve) => (this.markConnected = resolve));
  private fail: (error: CliError) => void = () => {};
  private readonly failed = new Promise<never>((_, reject) => (this.fail = reject));
  /** With `--encryption`. */
  private readonly encryption: ChatEncryption | undefined;
  /** /reply /edit /delete /react /info /search, and the mentions of what is typed. */
  private readonly messages: MessageCommands;
  /** The read mark on its way, if any; what shows unread counts waits for it. */
  private reading: Promise<void> = Promise.resolve();
  /** The highest seq of the open thread marked read, or asked to be. */
  private readUpTo = 0;
  /** The mark to send once the one on its way is answered: only the latest counts. */
  private nextRead: { threadId: number; seq: number } | undefined;

  constructor(
    private readonly client: ChatClient,
    private readonly terminal: Terminal,
    private readonly server: string,
    encrypted = false,
  ) {
    this.failed.catch(() => {}); // only ever awaited in races; a failure after the end concerns nobody
    this.renderer = new Renderer(client, terminal);
    this.encryption = encrypted ? new ChatEncryption(client, terminal) : undefined;
    this.messages = new MessageCommands(client, this.renderer, (line) => terminal.print(line), (thread, body, options) => this.sendMessage(thread, body, [], options));
    client.on('state', (change) => this.stateChanged(change));
    client.on('thread', ({ thread, reason }) => {
      if (this.open?.id === thread.id) this.open = thread;
      if (reason === 'changed') this.messages.forgetMembers(thread.id);
    });
    client.on('status', () => this.wake?.());
    // The open thread is the one on screen: what arrives in it is read, as in a chat app with that chat open.
    // A message shown as unreadable (encrypted, and not opened here) is not read: a later one that is moves the mark.
    client.on('message', (message) => {
      if (this.open?.id === message.thread_id && message.sender_id !== client.user?.id && isReadable(message)) this.markRead(message.thread_id, message.seq);
    });
  }

  /**
   * Marks the thread read up to `seq`: at once when no mark is on its way, else
   * once it is answered, only the latest. A failure (the connection dropped) is
   * left for /read.
   */
  private markRead(threadId: number, seq: number): void {
    if (seq <= this.readUpTo) return;
    this.readUpTo = seq;
    const idle = this.nextRead === undefined;
    this.nextRead = { threadId, seq };
    if (!idle) return;
    const send = async (): Promise<void> => {
      for (let mark = this.nextRead; mark !== undefined; mark = this.nextRead) {
        await this.client.markRead(mark.threadId, mark.seq).catch(() => undefined);
        if (this.nextRead === mark) this.nextRead = undefined;
      }
    };
    this.reading = send();
  }

  async run(): Promise<Outcome> {
    try {
      await this.client.start().catch((error: unknown) => {
        throw new CliError(`cannot read the client state: ${(error as Error).message}`);
      });
      await Promise.race([this.connection, this.failed]);
      for (;;) {
        const line = await Promise.race([this.terminal.next(), this.failed]);
        const outcome = line === undefined ? 'quit' : await Promise.race([this.handle(line.trim()), this.failed]);
        if (outcome === 'quit') await this.drain();
        if (outcome) return outcome;
        this.terminal.prompt();
      }
    } finally {
      this.renderer.closing = true;
      await this.client.close();
      await this.renderer.idle();
    }
  }

  private stateChanged(change: StateChange): void {
    const previous = this.lastState;
    this.lastState = change.state;
    if (change.state === previous) return; // the same state again, with another pending count
    const why = `${change.reason ?? 'closed'}${change.error ? `: ${change.error.message}` : ''}`;
    if (change.state === 'syncing' && !this.connected) {
      this.connected = true;
      this.renderer.names.learn(this.client.user);
      this.terminal.print(`connected as ${this.client.user?.username} (device ${this.client.deviceId}) to ${this.server}`);
      this.markConnected();
    } else if (change.state === 'offline' && !this.connected) {
      this.fail(new CliError(`cannot reach ${this.server} (${why})`));
    } else if (change.state === 'offline' || (change.state === 'online' && this.wasOffline)) {
      this.wasOffline = change.state === 'offline';
      this.terminal.print(stateLine(change) ?? change.state);
    } else if (change.state === 'stopped' && change.reason !== 'closed_by_client' && !this.loggingOut) {
      this.fail(
        change.reason === 'auth_failed' || change.reason === 'device_revoked'
          ? new LoginRefused(`the server refused the saved login (${why}); it has been deleted: run the same command again to log in`)
          : new CliError(`the server ended the session (${why})`),
      );
    }
  }

  private async handle(text: string): Promise<Outcome | undefined> {
    if (text === '') return undefined;
    if (!text.startsWith('/') || text.startsWith('//')) return this.sendText(text.startsWith('//') ? text.slice(1) : text);
    const [name = '', ...args] = splitArguments(text);
    try {
      return await this.command(name, args, args.map((arg) => arg.replace(/^@/, '')), text);
    } catch (error) {
      this.terminal.print(`error: ${(error as Error).message}`);
      return undefined;
    }
  }

  /** `users`: the arguments without a leading @, for the commands that take usernames. */
  private async command(name: string, args: string[], users: string[], line: string): Promise<Outcome | undefined> {
    const print = (line: string): undefined => void this.terminal.print(line);
    switch (name) {
      case '/help':
        HELP.forEach(print);
        return void (this.encryption ? ENCRYPTION_HELP.forEach(print) : print('  (/verify /devices /approve /share-history: run with --encryption)'));
      case '/threads': {
        await this.reading;
        const threads = await this.refreshThreads();
        this.listed = threads.map((thread) => thread.id);
        if (threads.length === 0) return print('no threads yet: /dm USER or /group TITLE USER...');
        for (const thread of threads) if (thread.last_message) await this.renderer.label(thread.id, userIdsIn(thread.last_message));
        return void threads.forEach((thread, index) => print(threadLine(index, thread, this.renderer.names)));
      }
      case '/open':
        return this.openThread(await this.findThread(single(args, '/open N|@USER|#ID')));
      case '/dm':
        return this.openThread((await this.client.openDirect(single(users, '/dm USER'))).id);
      case '/group':
        if (users.length < 2) throw new Error('usage: /group TITLE USER...');
        return this.openNewGroup(await this.client.createGroup(args[0] as string, users.slice(1)));
      case '/add':
        if (users.length === 0) throw new Error('usage: /add USER...');
        return void (await this.client.addMembers(this.current().id, users));
      case '/remove':
        return this.client.removeMember(this.current().id, single(users, '/remove USER')).then(() => undefined);
      case '/leave': {
        const thread = this.current();
        await this.client.leaveGroup(thread.id);
        this.open = undefined;
        return print(`left ${threadLabel(thread)}`);
      }
      case '/more': {
        const page = await this.client.history(this.current().id, { before: this.oldestSeq }, PAGE);
        this.oldestSeq = page.messages[0]?.seq ?? this.oldestSeq;
        return void (await this.renderer.page(page.messages, page.has_more_before, [], '(no older messages)'));
      }
      case '/read': {
        const thread = this.current();
        const read = await this.client.markRead(thread.id);
        return print(`${threadLabel(thread)} read up to ${read.read_seq}; ${read.total_unread} unread in all`);
      }
      case '/file': {
        const thread = this.current();
        if (args.length < 1) throw new Error('usage: /file PATH [TEXT]');
        const caption = args.slice(1).join(' ');
        // With --encryption every thread is encrypted; without, a thread that requires it is refused before the upload.
        if (thread.e2e_required && !this.encryption) throw new Error(`${threadLabel(thread)} takes end-to-end encrypted messages only; run chatd chat with --encryption`);
        const encrypt = this.encryption !== undefined;
        const attachment = await uploadFile(this.client, args[0] as string, encrypt, print);
        return this.sendMessage(thread, caption === '' ? null : { text: caption }, [attachment], { mentions: await this.messages.mentions(thread.id, caption) });
      }
      case '/save': {
        const [which = '', path] = args;
        if (!/^\d+$/.test(which) || !path || args.length !== 2) throw new Error('usage: /save N PATH (N: 1 for the last attachment shown, 2 the one before…)');
        const attachment = this.renderer.shownAttachment(Number(which));
        if (!attachment) throw new Error(`no attachment ${which} shown yet`);
        return print(`saved ${attachment.name ?? attachment.id} to ${path} (${await saveAttachment(this.client, attachment, path)} bytes)`);
      }
      case '/who':
      case '/contacts': {
        const thread = name === '/who' ? this.open : undefined;
        const members = thread ? (await this.client.thread(thread.id)).members.filter(({ user }) => user.id !== this.client.user?.id) : [];
        const presence = members.length > 0 ? await this.client.presence(members.map(({ user }) => user.id)) : [];
        if (thread) print(`in ${threadLabel(thread)}:`);
        for (const { user } of members) print(`  ${presenceLine(user.username, presence.find((seen) => seen.user_id === user.id) ?? null)}`);
        const contacts = await this.client.contacts();
        print(contacts.length === 0 ? 'no contacts yet: /contact USER' : 'contacts:');
        return void contacts.forEach((contact) => print(`  ${presenceLine(contact.user.username, contact.presence)}`));
      }
      case '/contact':
        await this.client.addContact(single(users, '/contact USER'));
        return print(`${users[0]} is in your contacts`);
      case '/logout':
        await this.drain();
        this.loggingOut = true; // the server then closes this device's connection: no refusal to report
        return this.client.api.logout().then(
          () => 'logout',
          (error: unknown) => {
            this.loggingOut = false;
            throw error;
          },
        );
      case '/quit':
        return 'quit';
      default:
        if (await this.messages.run(name, args, line)) return undefined;
        if (this.encryption && (await this.encryption.command(name, args, (question) => this.ask(question)))) return undefined;
        if (ENCRYPTION_HELP.some((line) => line.trimStart().startsWith(`${name} `))) return print(`${name} needs end-to-end encryption: run chatd chat with --encryption`);
        return print(`unknown command ${name}; ${SHORT_HELP}`);
    }
  }

  /** A question, answered by the next input line. */
  private async ask(question: string): Promise<string | undefined> {
    this.terminal.print(question);
    this.terminal.prompt();
    return Promise.race([this.terminal.next(), this.failed]);
  }

  /** Resolves once the message is stored and handed to the connection: what is typed next goes out after it. */
  private async sendText(text: string): Promise<undefined> {
    const thread = this.open;
    if (!thread) return void this.terminal.print('open a thread first: /dm USER or /open N');
    return this.sendMessage(thread, { text }, [], { mentions: await this.messages.mentions(thread.id, text) });
  }

  private async sendMessage(
    thread: ThreadJson,
    body: unknown,
    attachments: readonly UploadedAttachment[] = [],
    options: { readonly replyTo?: number; readonly mentions?: readonly number[] } = {},
  ): Promise<undefined> {
    const needsEncryption = `error: not sent: ${threadLabel(thread)} takes end-to-end encrypted messages only; run chatd chat with --encryption`;
    if (thread.e2e_required && !this.encryption) return void this.terminal.print(needsEncryption);
    const clientMsgId = newClientMsgId();
    const stored = this.client.once('status', (change) => change.client_msg_id === clientMsgId);
    const extra = {
      ...(attachments.length > 0 ? { attachments } : {}),
      ...(options.replyTo !== undefined ? { replyTo: options.replyTo } : {}),
      ...(options.mentions && options.mentions.length > 0 ? { mentions: options.mentions } : {}),
    };
    const sent = this.client.send(thread.id, body, { clientMsgId, ...extra }).then(
      () => undefined,
      (error: unknown) => {
        // `closed`: the client stopped before the ack; the message stays in the store for the next run.
        if (error instanceof ClientError && error.code === 'closed') return;
        // The thread turned encrypted after this session last heard of it: the server (or the outbox) refused.
        if (error instanceof ClientError && error.code === 'encryption_required' && !this.encryption) return this.terminal.print(needsEncryption);
        this.terminal.print(`error: not sent to ${threadLabel(thread)}: ${(error as Error).message}`);
      },
    );
    this.sends.add(sent);
    void sent.then(() => {
      this.sends.delete(sent);
      this.wake?.();
    });
    await Promise.race([stored, sent]);
    return undefined;
  }

  /** Waits, a few seconds at most, until every message is acked; woken by status changes and settled sends. */
  private async drain(): Promise<void> {
    const deadline = Date.now() + DRAIN_MS;
    while (this.sends.size > 0 || this.client.pending().length > 0) {
      const left = deadline - Date.now();
      const unsent = Math.max(this.sends.size, this.client.pending().length);
      if (left <= 0) return void this.terminal.print(`${unsent} message(s) not sent yet; they are kept and sent on the next run`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  private current(): ThreadJson {
    if (!this.open) throw new Error('open a thread first: /dm USER or /open N');
    return this.open;
  }

  /** Most recent activity first, as /threads numbers them. */
  private async refreshThreads(): Promise<ThreadJson[]> {
    await this.client.threads();
    const threads = this.client.cachedThreads();
    for (const thread of threads) this.renderer.names.learnThread(thread);
    return threads;
  }

  private async findThread(ref: string): Promise<number> {
    if (/^#\d+$/.test(ref)) return Number(ref.slice(1));
    if (/^\d+$/.test(ref)) {
      if (this.listed.length === 0) this.listed = (await this.refreshThreads()).map((thread) => thread.id);
      const id = this.listed[Number(ref) - 1];
      if (id === undefined) throw new Error(`there is no thread ${ref}; /threads lists them`);
      return id;
    }
    const username = ref.replace(/^@/, '');
    const direct = (await this.refreshThreads()).find((thread) => thread.kind === 'direct' && thread.peer?.username.toLowerCase() === username.toLowerCase());
    if (!direct) throw new Error(`no thread with ${username} yet: /dm ${username} starts one`);
    return direct.id;
  }

  /** A group just made: its one message, the creation, arrives live; a page of history would show it twice. */
  private async openNewGroup(thread: ThreadJson): Promise<undefined> {
    this.open = thread;
    this.readUpTo = 0;
    this.oldestSeq = thread.last_seq + 1;
    await this.renderer.lines(async () => [`--- ${threadLabel(thread)} ---`]);
    return undefined;
  }

  private async openThread(threadId: number): Promise<undefined> {
    const { thread, members } = await this.client.thread(threadId);
    for (const member of members) this.renderer.names.learn(member.user);
    const page = await this.client.history(threadId, 'latest', PAGE);
    this.open = thread;
    this.readUpTo = 0;
    this.oldestSeq = page.messages[0]?.seq ?? thread.last_seq + 1;
    await this.renderer.page(page.messages, page.has_more_before, [`--- ${threadLabel(thread)} ---`], '(no messages yet)');
    const newest = page.messages.findLast(isReadable)?.seq ?? 0;
    if (thread.unread > 0 && newest > 0) this.markRead(threadId, newest);
    return undefined;
  }

}

function single(args: readonly string[], usage: string): string {
  if (args.length !== 1) throw new Error(`usage: ${usage}`);
  return args[0] as string;
}

/** Whether the message was shown as what it says: not an encrypted one this client could not open. */
function isReadable(message: MessageJson): boolean {
  return message.kind !== 'e2e' || (message as ClientMessage).e2e?.status === 'ok';
}
