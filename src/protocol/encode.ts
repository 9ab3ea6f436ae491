import { ChatError, ErrorCodes } from '../errors.js';
import type { AttachmentJson, ChangeJson, MessageJson, ReactionJson, RequestId, ServerFrame, UserJson } from './frames.js';

export function encodeFrame(frame: ServerFrame): string {
  return JSON.stringify(frame);
}

export function errorFrame(id: RequestId | null, error: ChatError): ServerFrame {
  const retryAfter = error.retryAfterSeconds === undefined ? {} : { retry_after_ms: error.retryAfterSeconds * 1000 };
  const field = error.field === undefined ? {} : { field: error.field };
  return {
    type: 'error',
    id,
    error: { ...error.details, code: error.code, message: error.message, retryable: ErrorCodes[error.code].retryable, ...retryAfter, ...field },
  };
}

/**
 * What the encoder needs of a user. Declared here, not imported, because the
 * protocol imports no other layer; the services' User fits it as it is.
 */
export interface UserFields {
  readonly id: number;
  readonly username: string;
  readonly displayName: string;
}

/** The one user mapper: how a user appears in frames and in HTTP bodies alike. */
export function userJson(user: UserFields): UserJson {
  return { id: user.id, username: user.username, display_name: user.displayName };
}

/**
 * A stored message as the encoder takes it: MessageJson's fields, with the body
 * still the compact JSON text decode.ts made of it (SendFrame.body_json) and
 * the store keeps. The services' Message fits it as it is, so the fanout hands
 * its message over without building another object per event.
 */
export interface MessageFields {
  readonly id: number;
  readonly threadId: number;
  readonly seq: number;
  readonly senderUserId: number;
  readonly senderDeviceId: number;
  readonly clientMsgId: string;
  readonly kind: MessageJson['kind'];
  /** Compact JSON text (`null` only for a message with attachments and no body): spliced into frames as it is. */
  readonly bodyJson: string;
  readonly createdAt: number;
  /** Compact JSON text of the AttachmentJson list the server stored, or null for none: spliced as it is. */
  readonly attachmentsJson: string | null;
  // Protocol 3 (message changes). Null (or absent) is "none": the field is left out of the frame.
  readonly replyTo?: number | null;
  /** Compact JSON text of the user id list, as stored; null for none. */
  readonly mentionsJson?: string | null;
  readonly editedAt?: number | null;
  /** Deleted for everyone (ms): the frame says `deleted: true` and `body: null`, whatever is stored. */
  readonly deletedAt?: number | null;
  /** Compact JSON text of the ReactionJson list, as stored; null for none. */
  readonly reactionsJson?: string | null;
  /** A change message: the message it changes, and what changed (the wire's ChangeJson without `message_id`). */
  readonly targetId?: number | null;
  readonly change?: ChangeFields | null;
}

/** What a change message did (the storage port's MessageChange fits it as it is). */
export type ChangeFields = { readonly type: 'edit' } | { readonly type: 'delete' } | { readonly type: 'reaction'; readonly emoji: string; readonly on: boolean };

export function messageJson(message: MessageFields): MessageJson {
  return {
    id: message.id,
    thread_id: message.threadId,
    seq: message.seq,
    sender_id: message.senderUserId,
    sender_device_id: message.senderDeviceId,
    client_msg_id: message.clientMsgId,
    kind: message.kind,
    body: deleted(message) ? null : (JSON.parse(message.bodyJson) as unknown),
    created_at: message.createdAt,
    ...(message.attachmentsJson === null || deleted(message) ? {} : { attachments: JSON.parse(message.attachmentsJson) as AttachmentJson[] }),
    ...(isSet(message.replyTo) ? { reply_to: message.replyTo } : {}),
    ...(isSet(message.mentionsJson) && !deleted(message) ? { mentions: JSON.parse(message.mentionsJson) as number[] } : {}),
    ...(isSet(message.editedAt) ? { edited_at: message.editedAt } : {}),
    ...(deleted(message) ? { deleted: true as const } : {}),
    ...(isSet(message.reactionsJson) && !deleted(message) ? { reactions: JSON.parse(message.reactionsJson) as ReactionJson[] } : {}),
    ...(isSet(message.change) ? { change: changeJson(message.change, message.targetId ?? 0) } : {}),
  };
}

function isSet<T>(value: T | null | undefined): value is T {
  return value !== null && value !== undefined;
}

function deleted(message: MessageFields): boolean {
  return isSet(message.deletedAt);
}

/** The change as the wire carries it: the stored change with the target's id after its type. */
function changeJson(change: ChangeFields, targetId: number): ChangeJson {
  return change.type === 'reaction' ? { type: change.type, message_id: targetId, emoji: change.emoji, on: change.on } : { type: change.type, message_id: targetId };
}

/** The protocol 3 fields after `attachments`, in MessageJson's order (the same as messageJson gives). */
function changeFieldsText(message: MessageFields): string {
  const gone = deleted(message);
  return (
    (isSet(message.replyTo) ? `,"reply_to":${message.replyTo}` : '') +
    (isSet(message.mentionsJson) && !gone ? `,"mentions":${message.mentionsJson}` : '') +
    (isSet(message.editedAt) ? `,"edited_at":${message.editedAt}` : '') +
    (gone ? ',"deleted":true' : '') +
    (isSet(message.reactionsJson) && !gone ? `,"reactions":${message.reactionsJson}` : '') +
    (isSet(message.change) ? `,"change":${JSON.stringify(changeJson(message.change, message.targetId ?? 0))}` : '')
  );
}

/**
 * The `message` event's text: exactly what encodeFrame({ type: 'message',
 * message: messageJson(message) }) gives (test/unit/wire.test.ts checks it),
 * with the stored body (and attachments) spliced in as they are. Parsing the body only to encode it
 * again was a large share of the fanout's cost; this is encoded once per
 * message, whatever the number of recipients.
 */
export function messageEventText(message: MessageFields): string {
  return (
    `{"type":"message","message":{"id":${message.id},"thread_id":${message.threadId},"seq":${message.seq},` +
    `"sender_id":${message.senderUserId},"sender_device_id":${message.senderDeviceId},` +
    `"client_msg_id":${JSON.stringify(message.clientMsgId)},"kind":${JSON.stringify(message.kind)},` +
    `"body":${deleted(message) ? 'null' : message.bodyJson},"created_at":${message.createdAt}` +
    (message.attachmentsJson === null || deleted(message) ? '' : `,"attachments":${message.attachmentsJson}`) +
    changeFieldsText(message) +
    '}}'
  );
}
