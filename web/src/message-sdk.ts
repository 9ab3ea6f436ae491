import type { ChatClient, ClientMessage } from '../../src/client/browser.js';
import type { Change } from './message-changes.js';

/**
 * What the web client uses of the SDK's message API (MSG-SPEC §4, docs/client.md):
 * edit, delete, react, search, replies and mentions on send, and the
 * `message_changed` / `message_hidden` events, in one place.
 */

/** A search result as the SDK gives it: the message (decrypted in an encrypted thread) and a snippet with its hits. */
export interface SearchHit {
  readonly message: ClientMessage;
  readonly snippet: string;
  /** [start, end) UTF-16 offsets into `snippet`. */
  readonly highlights: ReadonlyArray<readonly [number, number]>;
}

export interface SearchPage {
  readonly results: readonly SearchHit[];
  readonly nextCursor: string | null;
}

/** `message_changed`: the target's id, what changed, its new state when the SDK holds it, and the change message. */
export interface MessageChangedEvent {
  readonly threadId: number;
  readonly messageId: number;
  readonly change: Change;
  readonly message?: ClientMessage;
  /** The change message: who reacted, when; for an edit the new body (decrypted) and mentions. */
  readonly by?: ClientMessage;
}

export interface MessageHiddenEvent {
  readonly threadId: number;
  readonly messageId: number;
}

export interface SendOptions {
  readonly replyTo?: number;
  readonly mentions?: readonly number[];
}

/** The SDK's message methods and events, as MSG-SPEC §4 names them. */
interface MessageApi {
  send(threadId: number, body: unknown, options?: SendOptions & { attachments?: readonly unknown[] }): Promise<unknown>;
  edit(messageId: number, body: unknown, options?: { mentions?: readonly number[] }): Promise<unknown>;
  deleteMessage(messageId: number, options: { forEveryone: boolean }): Promise<unknown>;
  react(messageId: number, emoji: string, on?: boolean): Promise<unknown>;
  search(query: string, options?: { threadId?: number; senderId?: number; after?: number; before?: number; cursor?: string; limit?: number }): Promise<SearchPage>;
  on(event: 'message_changed', listener: (event: MessageChangedEvent) => void): unknown;
  on(event: 'message_hidden', listener: (event: MessageHiddenEvent) => void): unknown;
}

/** The client seen through MSG-SPEC §4's names. */
export function messageApi(client: ChatClient): MessageApi {
  return client as unknown as MessageApi;
}
