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

/** `message_changed`: the target's id, what changed, and its new state when the SDK has it. */
export interface MessageChangedEvent {
  readonly threadId: number;
  readonly messageId: number;
  /** The change (`{type, message_id, …}`), or the change message carrying it. */
  readonly change: Change | (ClientMessage & { readonly change: Change });
  readonly message?: ClientMessage;
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

/** The change and the change message (when the event carries one) of a `message_changed` event. */
export function changeOf(event: MessageChangedEvent): { change: Change; row: ClientMessage | undefined } {
  const { change } = event;
  if ('type' in change && !('seq' in change)) return { change: change as Change, row: undefined };
  const row = change as ClientMessage & { change: Change };
  return { change: row.change, row };
}
