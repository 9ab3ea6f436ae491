import type { ClientMessage } from '../client/node.js';

/** How many messages' latest state the numbers keep (for /react's toggle and reply quotes); their numbers stay. */
const KEPT_MESSAGES = 2000;

export interface NumberedMessage {
  readonly number: number;
  readonly id: number;
  readonly threadId: number;
  /** Its latest state as last shown or changed, while kept. */
  readonly message: ClientMessage | undefined;
}

/**
 * The number `chatd chat` prints beside each message, `(12)`, for `/edit
 * 12`, `/reply 12`, `/react 12`, `/delete 12`: given in the order messages are
 * first shown (live, from history, in search results, or named by a reply or
 * a change), and the same for the same message for the whole run, so a
 * number read on screen still means that message after others arrived.
 * (`/save N` counts attachments back from the newest instead: it names files,
 * not messages.)
 */
export class MessageNumbers {
  private next = 1;
  private readonly byId = new Map<number, number>();
  private readonly entries = new Map<number, { id: number; threadId: number }>();
  private readonly latest = new Map<number, ClientMessage>();

  /** The message's number, given now if it has none. */
  numberOf(messageId: number, threadId: number): number {
    let number = this.byId.get(messageId);
    if (number === undefined) {
      number = this.next++;
      this.byId.set(messageId, number);
      this.entries.set(number, { id: messageId, threadId });
    }
    return number;
  }

  /** Keeps the message's latest state (it was shown, or changed) and returns its number. */
  remember(message: ClientMessage): number {
    const number = this.numberOf(message.id, message.thread_id);
    this.latest.delete(message.id); // re-inserted: the Map's order is the order of last use
    this.latest.set(message.id, message);
    if (this.latest.size > KEPT_MESSAGES) this.latest.delete(this.latest.keys().next().value as number);
    return number;
  }

  /** The latest state known of a message, by id. */
  message(messageId: number): ClientMessage | undefined {
    return this.latest.get(messageId);
  }

  /** What number `number` stands for, if it was given. */
  find(number: number): NumberedMessage | undefined {
    const entry = this.entries.get(number);
    return entry && { number, id: entry.id, threadId: entry.threadId, message: this.latest.get(entry.id) };
  }
}
