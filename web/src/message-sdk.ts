/**
 * What the web client uses of the SDK's message API (docs/client.md):
 * edit, delete, react, search, replies and mentions on send, and the
 * `message_changed` / `message_hidden` events, named in one place.
 */
export type { MessageChange, MessageHidden, SearchPage, SearchResult as SearchHit } from '../../src/client/browser.js';
export { parseMentions } from '../../src/client/browser.js';

/** What a new message carries besides its text and files: the message it answers, the members it mentions. */
export interface SendOptions {
  readonly replyTo?: number;
  readonly mentions?: readonly number[];
}
