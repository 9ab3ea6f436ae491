import { ChatError } from '../errors.js';
import {
  type JsonObject,
  fail,
  isAbsent,
  isObject,
  isTextOfLength,
  optionalBoolean,
  optionalEnum,
  optionalString,
  requireId,
  requireIdList,
  requireSeq,
  requireString,
} from './fields.js';
import type { ClientFrame, ClientFrameType, HistoryFrame, RequestId, UserRefJson } from './frames.js';

/** A frame that could not be decoded, with the request id when one was readable. */
export class FrameError extends ChatError {
  constructor(
    readonly requestId: RequestId | null,
    error: ChatError,
  ) {
    super(error.code, error.message, error.field === undefined ? {} : { field: error.field });
  }
}

const MAX_ID_LENGTH = 64;

type FieldReaders = { [T in ClientFrameType]: (frame: JsonObject, id: RequestId) => Extract<ClientFrame, { type: T }> };

const readers: FieldReaders = {
  auth: (f, id) => ({ type: 'auth', id, token: requireString(f, 'token', 256) }),
  ping: (_f, id) => ({ type: 'ping', id }),
  send: (f, id) => {
    const thread_id = requireId(f, 'thread_id');
    const client_msg_id = requireString(f, 'client_msg_id', 64);
    const kind = optionalEnum(f, 'kind', ['text', 'e2e'] as const) ?? 'text';
    const attachments = readAttachments(f);
    const body_json = requireBody(f, attachments !== undefined);
    const reply_to = isAbsent(f.reply_to) ? undefined : requireId(f, 'reply_to');
    return { type: 'send', id, thread_id, client_msg_id, kind, body_json, attachments, reply_to, mentions: readMentions(f) };
  },
  edit: (f, id) => ({
    type: 'edit',
    id,
    message_id: requireId(f, 'message_id'),
    client_msg_id: requireString(f, 'client_msg_id', 64),
    kind: optionalEnum(f, 'kind', ['text', 'e2e'] as const) ?? 'text',
    body_json: requireBody(f, false),
    mentions: readMentions(f),
  }),
  delete: (f, id) => {
    const message_id = requireId(f, 'message_id');
    const scope = optionalEnum(f, 'for', ['everyone', 'me'] as const) ?? fail('for', 'is required ("everyone" or "me")');
    // For everyone the delete is a change message, idempotent by its client_msg_id; for me it is a plain row.
    const client_msg_id = scope === 'everyone' ? requireString(f, 'client_msg_id', 64) : optionalString(f, 'client_msg_id', 64);
    return { type: 'delete', id, message_id, for: scope, client_msg_id };
  },
  react: (f, id) => ({
    type: 'react',
    id,
    message_id: requireId(f, 'message_id'),
    // Whether it is one emoji is the service's to judge (one rule, in one place); this bounds the text.
    emoji: requireString(f, 'emoji', MAX_EMOJI_LENGTH),
    on: optionalBoolean(f, 'on') ?? true,
    client_msg_id: requireString(f, 'client_msg_id', 64),
  }),
  hidden: (f, id) => ({ type: 'hidden', id, after: isAbsent(f.after) ? 0 : requireSeq(f, 'after'), limit: optionalLimit(f, MAX_HIDDEN_PAGE) }),
  delivered: (f, id) => ({ type: 'delivered', id, thread_id: requireId(f, 'thread_id'), seq: requireSeq(f, 'seq') }),
  read: (f, id) => ({ type: 'read', id, thread_id: requireId(f, 'thread_id'), seq: requireSeq(f, 'seq') }),
  receipts: (f, id) => ({ type: 'receipts', id, thread_id: requireId(f, 'thread_id'), seq: requireSeq(f, 'seq') }),
  history: (f, id) => ({ type: 'history', id, thread_id: requireId(f, 'thread_id'), anchor: readAnchor(f), limit: optionalLimit(f) }),
  jump: (f, id) => ({ type: 'jump', id, message_id: requireId(f, 'message_id'), limit: optionalLimit(f) }),
  search: (f, id) => ({
    type: 'search',
    id,
    // The service checks the length once trimmed (a blank query is refused there too).
    query: requireString(f, 'query', MAX_SEARCH_QUERY),
    thread_id: isAbsent(f.thread_id) ? undefined : requireId(f, 'thread_id'),
    sender_id: isAbsent(f.sender_id) ? undefined : requireId(f, 'sender_id'),
    after: isAbsent(f.after) ? undefined : requireSeq(f, 'after'),
    before: isAbsent(f.before) ? undefined : requireSeq(f, 'before'),
    cursor: optionalString(f, 'cursor', 64),
    limit: searchLimit(f),
  }),
  sync: (f, id) => ({ type: 'sync', id, cursors: readCursors(f) }),
  threads: (_f, id) => ({ type: 'threads', id }),
  thread_get: (f, id) => ({ type: 'thread_get', id, thread_id: requireId(f, 'thread_id') }),
  direct_open: (f, id) => ({ type: 'direct_open', id, user: requireUserRef(f) }),
  group_create: (f, id) => ({
    type: 'group_create',
    id,
    title: requireString(f, 'title', 100),
    members: readMembers(f, false),
    e2e_required: optionalBoolean(f, 'e2e_required') ?? false,
  }),
  group_add: (f, id) => ({ type: 'group_add', id, thread_id: requireId(f, 'thread_id'), members: readMembers(f, true) }),
  group_remove: (f, id) => ({ type: 'group_remove', id, thread_id: requireId(f, 'thread_id'), user: requireUserRef(f) }),
  group_leave: (f, id) => ({ type: 'group_leave', id, thread_id: requireId(f, 'thread_id') }),
  group_rename: (f, id) => ({ type: 'group_rename', id, thread_id: requireId(f, 'thread_id'), title: requireString(f, 'title', 100) }),
  group_role: (f, id) => ({
    type: 'group_role',
    id,
    thread_id: requireId(f, 'thread_id'),
    user: requireUserRef(f),
    role: optionalEnum(f, 'role', ['owner', 'admin', 'member'] as const) ?? fail('role', 'is required (owner, admin or member)'),
  }),
  thread_settings: (f, id) => ({
    type: 'thread_settings',
    id,
    thread_id: requireId(f, 'thread_id'),
    muted: optionalBoolean(f, 'muted'),
    // null clears the label: the one optional field where null is not the same as absent.
    label: f.label === null ? null : f.label === undefined ? undefined : requireString(f, 'label', 64),
  }),
  typing: (f, id) => ({ type: 'typing', id, thread_id: requireId(f, 'thread_id') }),
  presence: (f, id) => ({ type: 'presence', id, user_ids: requireIdList(f, 'user_ids', 1000) }),
  contacts: (_f, id) => ({ type: 'contacts', id }),
  contact_add: (f, id) => ({ type: 'contact_add', id, user: requireUserRef(f) }),
  contact_remove: (f, id) => ({ type: 'contact_remove', id, user_id: requireId(f, 'user_id') }),
  // A display name is at most 64 characters: a longer prefix can find nobody. The service caps the limit at 20.
  users_search: (f, id) => ({ type: 'users_search', id, query: requireString(f, 'query', 64), limit: optionalLimit(f, 10) }),
  push_register: (f, id) => ({
    type: 'push_register',
    id,
    platform: optionalEnum(f, 'platform', ['apns', 'fcm', 'webpush'] as const) ?? fail('platform', 'is required ("apns", "fcm" or "webpush")'),
    token: requireString(f, 'token', 4096),
    topic: optionalString(f, 'topic', 200),
  }),
  push_unregister: (_f, id) => ({ type: 'push_unregister', id }),
  keys_publish: (f, id) => ({
    type: 'keys_publish',
    id,
    enc_key: requireString(f, 'enc_key', 64),
    sign_key: requireString(f, 'sign_key', 64),
    counter: requireId(f, 'counter'),
    signature: requireString(f, 'signature', 128),
    account_signature: optionalString(f, 'account_signature', 128),
  }),
  account_publish: (f, id) => ({
    type: 'account_publish',
    id,
    account_key: requireString(f, 'account_key', 64),
    signature: requireString(f, 'signature', 128),
    reset: optionalBoolean(f, 'reset') ?? false,
    password: optionalString(f, 'password', 1024),
  }),
  device_approve: (f, id) => ({ type: 'device_approve', id, device_id: requireId(f, 'device_id'), account_signature: requireString(f, 'account_signature', 128) }),
  keys_get: (f, id) => ({ type: 'keys_get', id, user_ids: isAbsent(f.user_ids) ? undefined : requireIdList(f, 'user_ids', 1000) }),
  // The payload's size is the service's to judge (e2e.max_device_message_bytes); the frame limit bounds the text.
  device_send: (f, id) => ({ type: 'device_send', id, device_id: requireId(f, 'device_id'), payload: typeof f.payload === 'string' && f.payload !== '' ? f.payload : fail('payload', 'is required: the message in base64') }),
  device_messages: (f, id) => ({ type: 'device_messages', id, after: isAbsent(f.after) ? 0 : requireSeq(f, 'after'), limit: optionalLimit(f, 100) }),
  device_messages_ack: (f, id) => ({ type: 'device_messages_ack', id, up_to: requireId(f, 'up_to') }),
  require_e2e: (f, id) => ({ type: 'require_e2e', id, thread_id: requireId(f, 'thread_id') }),
};

/**
 * Text → ClientFrame. Pure: checks size, JSON, the request id, the type and
 * each field, and names the bad field in the error. Never throws anything but FrameError.
 * Fields are read with protocol/fields.ts, the readers HTTP uses too, so string
 * limits count code points as the services do.
 */
export function decodeClientFrame(text: string, maxBytes: number): ClientFrame {
  if (Buffer.byteLength(text, 'utf8') > maxBytes) {
    // The transport bounds frames at twice the limit, so reading the id to answer it is cheap.
    throw new FrameError(
      readableId(text),
      new ChatError('payload_too_large', `frame is larger than the limit of ${maxBytes} bytes (welcome.limits.max_frame_bytes)`),
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new FrameError(null, new ChatError('invalid_frame', 'frame is not valid JSON'));
  }
  if (!isObject(value)) throw new FrameError(null, new ChatError('invalid_frame', 'frame must be a JSON object'));
  const id = value.id;
  if (!isTextOfLength(id, MAX_ID_LENGTH)) {
    throw new FrameError(null, new ChatError('invalid_field', `id must be a string of 1-${MAX_ID_LENGTH} characters`, { field: 'id' }));
  }
  const type = value.type;
  const reader = typeof type === 'string' && Object.hasOwn(readers, type) ? readers[type as ClientFrameType] : undefined;
  if (type === undefined) {
    throw new FrameError(id, new ChatError('invalid_field', `type is required; known: ${Object.keys(readers).join(', ')}`, { field: 'type' }));
  }
  if (!reader) {
    throw new FrameError(id, new ChatError('unknown_type', `unknown frame type ${JSON.stringify(type)}; known: ${Object.keys(readers).join(', ')}`));
  }
  try {
    return reader(value, id);
  } catch (error) {
    throw new FrameError(id, error as ChatError);
  }
}

/** The page size asked for; the service caps it (history_page_max, 100 for device messages). */
function optionalLimit(frame: JsonObject, fallback = 50): number {
  if (isAbsent(frame.limit)) return fallback;
  const value = frame.limit;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail('limit', 'must be a positive integer');
  return value;
}

/** The longest search query, in characters. */
export const MAX_SEARCH_QUERY = 200;

/** A search page's size: 1-50, 20 when absent. */
function searchLimit(frame: JsonObject): number {
  if (isAbsent(frame.limit)) return 20;
  const value = frame.limit;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > 50) fail('limit', 'must be an integer from 1 to 50');
  return value;
}

/**
 * The body: any JSON value, re-encoded compactly (that text is what is stored
 * and sent). Required unless the message carries attachments: then absent (or
 * null) is stored as `null`.
 */
function requireBody(frame: JsonObject, hasAttachments: boolean): string {
  if (isAbsent(frame.body)) {
    if (hasAttachments) return 'null';
    fail('body', 'is required (any JSON value, e.g. {"text":"hi"}) unless the message carries attachments');
  }
  return JSON.stringify(frame.body);
}

/** At most this many users a message mentions. */
export const MAX_MENTIONS = 50;
/** The longest emoji text taken (code points): the longest RGI sequences (families, flags of regions) are about 10. */
const MAX_EMOJI_LENGTH = 32;
/** The largest page of the `hidden` request (also its default). */
export const MAX_HIDDEN_PAGE = 500;

/** `mentions`: distinct user ids, at most MAX_MENTIONS; undefined when absent or empty. */
function readMentions(frame: JsonObject): readonly number[] | undefined {
  if (isAbsent(frame.mentions)) return undefined;
  const ids = requireIdList(frame, 'mentions', MAX_MENTIONS);
  if (new Set(ids).size !== ids.length) fail('mentions', 'must not name a user twice');
  return ids.length === 0 ? undefined : ids;
}

/** At most this many attachments a message; an id is at most MAX_ATTACHMENT_ID_LENGTH characters (the server's ids are 22). */
export const MAX_ATTACHMENTS = 10;
const MAX_ATTACHMENT_ID_LENGTH = 64;

/**
 * `attachments`: 1-10 objects `{ "id": "<upload id>" }`, ids distinct (other
 * keys of each object are ignored: the server describes the file from its own
 * record). Undefined when absent. A malformed list is `invalid_frame` naming
 * the field and what is wrong with it.
 */
function readAttachments(frame: JsonObject): readonly string[] | undefined {
  if (isAbsent(frame.attachments)) return undefined;
  const value = frame.attachments;
  // `what` follows the field's name: " must …" for the list, "[n] …" for one entry.
  const refuse = (what: string): never => {
    throw new ChatError('invalid_frame', `attachments${what}`, { field: 'attachments' });
  };
  if (!Array.isArray(value)) return refuse(' must be a list of {"id": "<upload id>"}');
  if (value.length === 0) return refuse(' must hold at least one attachment (omit the field for none)');
  if (value.length > MAX_ATTACHMENTS) return refuse(` must hold at most ${MAX_ATTACHMENTS} attachments, got ${value.length}`);
  const ids: string[] = [];
  for (const [index, item] of value.entries()) {
    const attachmentId = isObject(item) ? item.id : undefined;
    if (!isTextOfLength(attachmentId, MAX_ATTACHMENT_ID_LENGTH)) {
      refuse(`[${index}] must be {"id": "<upload id>"} with id a string of 1-${MAX_ATTACHMENT_ID_LENGTH} characters`);
    }
    if (ids.includes(attachmentId as string)) refuse(`[${index}] repeats id ${JSON.stringify(attachmentId)}: each attachment once`);
    ids.push(attachmentId as string);
  }
  return ids;
}

function readAnchor(frame: JsonObject): HistoryFrame['anchor'] {
  const given = (['before', 'after', 'around'] as const).filter((key) => !isAbsent(frame[key]));
  if (given.length > 1) fail(given[1] as string, `cannot be combined with ${given[0]}; give one of before, after, around`);
  const key = given[0];
  const changes = optionalBoolean(frame, 'changes') ?? false;
  if (changes && key !== 'after') fail('changes', 'is only for a page after a seq (give after)');
  if (key === undefined) return { latest: true };
  const seq = requireSeq(frame, key);
  return key === 'before' ? { before: seq } : key === 'after' ? { after: seq, changes } : { around: seq };
}

function readCursors(frame: JsonObject): ReadonlyMap<number, number> | undefined {
  if (isAbsent(frame.cursors)) return undefined;
  const value = frame.cursors;
  if (!Array.isArray(value) || value.length > 100_000) fail('cursors', 'must be a list of {"thread_id": N, "seq": N}');
  const cursors = new Map<number, number>();
  for (const item of value) {
    if (!isObject(item)) fail('cursors', 'must be a list of {"thread_id": N, "seq": N}');
    cursors.set(requireId(item, 'thread_id'), requireSeq(item, 'seq'));
  }
  return cursors;
}

/** `user_id` or `username`. */
function requireUserRef(frame: JsonObject): UserRefJson {
  if (!isAbsent(frame.user_id)) return { user_id: requireId(frame, 'user_id') };
  if (!isAbsent(frame.username)) return { username: requireString(frame, 'username', 64) };
  return fail('user_id', 'is required (or username)');
}

/** `members`: a list of user ids (numbers) or usernames (strings). */
function readMembers(frame: JsonObject, required: boolean): UserRefJson[] {
  if (isAbsent(frame.members) && !required) return [];
  const value = frame.members;
  if (!Array.isArray(value) || (required && value.length === 0) || value.length > 100_000) {
    fail('members', 'must be a list of user ids or usernames');
  }
  return value.map((item) => {
    if (typeof item === 'number' && Number.isSafeInteger(item) && item > 0) return { user_id: item };
    if (isTextOfLength(item, 64)) return { username: item };
    return fail('members', 'must hold user ids (positive integers) or usernames (strings)');
  });
}

/**
 * The request id of a frame refused before it is read (over the size or the
 * rate limit), when it has a readable one, so that the client knows which
 * request failed. The transport bounds a frame at twice max_frame_bytes, and a
 * streak of refused frames closes the connection: the parse is bounded.
 */
export function readableId(text: string): RequestId | null {
  try {
    const value: unknown = JSON.parse(text);
    const id = isObject(value) ? value.id : undefined;
    return isTextOfLength(id, MAX_ID_LENGTH) ? id : null;
  } catch {
    return null;
  }
}
