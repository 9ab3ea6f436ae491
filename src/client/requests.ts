import type { UserRefJson } from '../protocol/frames.js';

/**
 * The requests a client sends, as JSON on the wire (docs/protocol.md), without
 * the `id` the connection adds. The server's decoded forms are in protocol/frames.ts.
 */
/** In `members` lists a user is a user id or a username. */
export type MemberRef = number | string;

/** A user reference sits in the frame itself: `user_id` or `username`. */
export type RequestJson =
  | { readonly type: 'ping' }
  /** `body` may be absent when `attachments` are given (1 to 10 upload ids). */
  | {
      readonly type: 'send'; readonly thread_id: number; readonly client_msg_id: string; readonly kind: 'text' | 'e2e'; readonly body?: unknown;
      readonly attachments?: ReadonlyArray<{ readonly id: string }>; readonly reply_to?: number; readonly mentions?: readonly number[];
    }
  /** The change requests (appended to the thread like messages, idempotent by client_msg_id). */
  | {
      readonly type: 'edit'; readonly message_id: number; readonly client_msg_id: string; readonly kind: 'text' | 'e2e'; readonly body: unknown;
      readonly mentions?: readonly number[];
    }
  | { readonly type: 'delete'; readonly message_id: number; readonly for: 'everyone' | 'me'; readonly client_msg_id?: string }
  | { readonly type: 'react'; readonly message_id: number; readonly emoji: string; readonly on: boolean; readonly client_msg_id: string }
  | { readonly type: 'hidden'; readonly after: number; readonly limit?: number }
  | {
      readonly type: 'search'; readonly query: string; readonly thread_id?: number; readonly sender_id?: number; readonly after?: number;
      readonly before?: number; readonly cursor?: string; readonly limit?: number;
    }
  | { readonly type: 'users_search'; readonly query: string; readonly limit?: number }
  | { readonly type: 'delivered'; readonly thread_id: number; readonly seq: number }
  | { readonly type: 'read'; readonly thread_id: number; readonly seq: number }
  /** Protocol 4: who has received and read message `seq`. */
  | { readonly type: 'receipts'; readonly thread_id: number; readonly seq: number }
  /** At most one of before, after, around; none: the newest page. */
  /** `changes` (with `after` only, protocol 3): change messages too, for closing a gap in the live stream. */
  | {
      readonly type: 'history'; readonly thread_id: number; readonly limit?: number; readonly before?: number; readonly after?: number; readonly around?: number;
      readonly changes?: boolean;
    }
  | { readonly type: 'jump'; readonly message_id: number; readonly limit?: number }
  | { readonly type: 'sync'; readonly cursors: ReadonlyArray<{ readonly thread_id: number; readonly seq: number }> }
  | { readonly type: 'threads' }
  | { readonly type: 'thread_get'; readonly thread_id: number }
  | ({ readonly type: 'direct_open' } & UserRefJson)
  | { readonly type: 'group_create'; readonly title: string; readonly members: readonly MemberRef[]; readonly e2e_required?: boolean }
  | { readonly type: 'group_add'; readonly thread_id: number; readonly members: readonly MemberRef[] }
  | ({ readonly type: 'group_remove'; readonly thread_id: number } & UserRefJson)
  | { readonly type: 'group_leave'; readonly thread_id: number }
  | { readonly type: 'group_rename'; readonly thread_id: number; readonly title: string }
  | ({ readonly type: 'group_role'; readonly thread_id: number; readonly role: 'owner' | 'admin' | 'member' } & UserRefJson)
  | { readonly type: 'thread_settings'; readonly thread_id: number; readonly muted?: boolean; readonly label?: string | null }
  | { readonly type: 'typing'; readonly thread_id: number }
  | { readonly type: 'presence'; readonly user_ids: readonly number[] }
  | { readonly type: 'contacts' }
  | ({ readonly type: 'contact_add' } & UserRefJson)
  | { readonly type: 'contact_remove'; readonly user_id: number }
  | { readonly type: 'push_register'; readonly platform: 'apns' | 'fcm' | 'webpush'; readonly token: string; readonly topic?: string }
  | { readonly type: 'push_unregister' }
  | {
      readonly type: 'keys_publish'; readonly enc_key: string; readonly sign_key: string; readonly counter: number;
      readonly signature: string; readonly account_signature?: string | null;
    }
  | { readonly type: 'keys_get'; readonly user_ids?: readonly number[] }
  | { readonly type: 'account_publish'; readonly account_key: string; readonly signature: string; readonly reset?: boolean; readonly password?: string }
  | { readonly type: 'device_approve'; readonly device_id: number; readonly account_signature: string }
  | { readonly type: 'device_send'; readonly device_id: number; readonly payload: string }
  | { readonly type: 'device_messages'; readonly after: number; readonly limit?: number }
  | { readonly type: 'device_messages_ack'; readonly up_to: number }
  | { readonly type: 'require_e2e'; readonly thread_id: number };

export type RequestType = RequestJson['type'];

/**
 * Requests that may be sent again after a lost reply without changing the
 * outcome. The connection retries these across reconnects by itself; the
 * others fail with `disconnected` and the app decides (`device_send` is not
 * among them: a repeat would queue the payload twice).
 */
const IDEMPOTENT: ReadonlySet<RequestType> = new Set<RequestType>([
  'ping', 'send', 'delivered', 'read', 'receipts', 'history', 'jump', 'sync', 'threads', 'thread_get', 'direct_open',
  'thread_settings', 'presence', 'contacts', 'contact_add', 'contact_remove', 'users_search', 'push_register', 'push_unregister',
  'keys_publish', 'keys_get', 'require_e2e', 'account_publish', 'device_approve', 'device_messages', 'device_messages_ack',
  // Changes are deduplicated by client_msg_id (a delete for me or a reaction already there is answered ok); hidden and search read.
  'edit', 'delete', 'react', 'hidden', 'search',
]);

export function isIdempotent(type: RequestType): boolean {
  return IDEMPOTENT.has(type);
}
