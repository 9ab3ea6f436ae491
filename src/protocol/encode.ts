import { ChatError, ErrorCodes } from '../errors.js';
import type { AttachmentJson, MessageJson, RequestId, ServerFrame, UserJson } from './frames.js';

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
}

export function messageJson(message: MessageFields): MessageJson {
  return {
    id: message.id,
    thread_id: message.threadId,
    seq: message.seq,
    sender_id: message.senderUserId,
    sender_device_id: message.senderDeviceId,
    client_msg_id: message.clientMsgId,
    kind: message.kind,
    body: JSON.parse(message.bodyJson) as unknown,
    created_at: message.createdAt,
    ...(message.attachmentsJson === null ? {} : { attachments: JSON.parse(message.attachmentsJson) as AttachmentJson[] }),
  };
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
    `"body":${message.bodyJson},"created_at":${message.createdAt}` +
    (message.attachmentsJson === null ? '' : `,"attachments":${message.attachmentsJson}`) +
    '}}'
  );
}
