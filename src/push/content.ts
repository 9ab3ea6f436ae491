import type { DuePush } from '../storage/ports/push.js';
import type { Notification } from './types.js';

export interface ContentSettings {
  /** Sender and text in plaintext notifications; false: only that there is a new message. */
  readonly preview: boolean;
  /** How long after its message a notification is still worth delivering. */
  readonly maxAgeMs: number;
}

/** Longest text preview, in characters (notification screens show about two lines). */
const PREVIEW_CHARS = 180;
const GENERIC = 'New message';
/** A mention without plaintext (E2E, previews off): no sender, no text — only what the server itself knows. */
const GENERIC_MENTION = 'You were mentioned';

type PushedMessage = Pick<DuePush, 'threadId' | 'messageId' | 'seq' | 'kind' | 'body' | 'attachments' | 'senderName' | 'threadKind' | 'threadTitle' | 'createdAt'> &
  Partial<Pick<DuePush, 'mentioned'>>;

/**
 * The notification for a message. An end-to-end encrypted message's says only
 * that there is a new message, and so does every one with previews off: the
 * app learns which thread from the data payload and fetches the rest itself.
 * A message that mentions the recipient says so ("Alice mentioned you: …";
 * "You were mentioned" without plaintext — mentions are outside the E2E
 * envelope, so this tells the provider nothing the server did not know), and
 * its data carries `mentioned: "true"`.
 */
export function notificationFor(message: PushedMessage, badge: number, settings: ContentSettings): Notification {
  const data = {
    thread_id: String(message.threadId),
    seq: String(message.seq),
    message_id: String(message.messageId),
    encrypted: message.kind === 'e2e' ? 'true' : 'false',
    ...(message.mentioned ? { mentioned: 'true' } : {}),
  };
  const common = { badge, collapseKey: `thread-${message.threadId}`, data, expiresAt: message.createdAt + settings.maxAgeMs };
  if (message.kind === 'e2e' || !settings.preview) return { ...common, body: message.mentioned ? GENERIC_MENTION : GENERIC };
  const text = previewOf(message.body) ?? attachmentsPreview(message.attachments) ?? GENERIC;
  if (message.mentioned) {
    const title = message.threadKind === 'group' ? (message.threadTitle ?? 'Group') : message.senderName;
    return { ...common, title, body: `${message.senderName} mentioned you: ${text}` };
  }
  if (message.threadKind === 'group') return { ...common, title: message.threadTitle ?? 'Group', body: `${message.senderName}: ${text}` };
  return { ...common, title: message.senderName, body: text };
}

/**
 * What a message without text says of its attachments (docs/attachments.md):
 * the first decides — "Photo", "Video", "Voice message" (audio), else
 * "File: <name>" — and " (+N)" counts the others. Undefined for none.
 */
export function attachmentsPreview(attachmentsJson: string | null): string | undefined {
  if (attachmentsJson === null) return undefined;
  let list: unknown;
  try {
    list = JSON.parse(attachmentsJson);
  } catch {
    return undefined;
  }
  if (!Array.isArray(list) || list.length === 0) return undefined;
  const first = (list[0] ?? {}) as { mime?: unknown; name?: unknown };
  const mime = typeof first.mime === 'string' ? first.mime : '';
  const name = typeof first.name === 'string' && first.name.trim() !== '' ? first.name.replace(/\s+/g, ' ').trim() : undefined;
  const what = mime.startsWith('image/') ? 'Photo' : mime.startsWith('video/') ? 'Video' : mime.startsWith('audio/') ? 'Voice message' : name ? `File: ${clip(name, 80)}` : 'File';
  return list.length > 1 ? `${what} (+${list.length - 1})` : what;
}

function clip(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** The `text` of a message body, shortened; undefined when the body has none. */
export function previewOf(bodyJson: string): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(bodyJson);
  } catch {
    return undefined;
  }
  const text = (body as { text?: unknown } | null)?.text;
  if (typeof text !== 'string' || text.trim() === '') return undefined;
  const oneLine = text.replace(/\s+/g, ' ').trim();
  const chars = [...oneLine];
  return chars.length <= PREVIEW_CHARS ? oneLine : `${chars.slice(0, PREVIEW_CHARS - 1).join('')}…`;
}

/**
 * What a browser's service worker receives (docs/push.md, "Web Push"): the
 * notification's own fields and nothing else, so an end-to-end encrypted
 * thread's says "New message" and its thread, as on APNs and FCM. `tag` is
 * one per thread (a newer notification replaces the older one), `badge` the
 * user's unread total (navigator.setAppBadge).
 */
export interface WebPushPayload {
  readonly title?: string;
  readonly body: string;
  readonly tag: string;
  readonly badge: number;
  readonly thread_id: number;
  readonly seq: number;
  readonly message_id: number;
  readonly encrypted: boolean;
  readonly mentioned?: true;
  /** Other string data a notification carries (a test notification's `test`). */
  readonly data?: Readonly<Record<string, string>>;
}

const PAYLOAD_NUMBERS = ['thread_id', 'seq', 'message_id'] as const;

export function webPushPayload(notification: Notification): WebPushPayload {
  const { data } = notification;
  const rest = Object.fromEntries(Object.entries(data).filter(([key]) => !(PAYLOAD_NUMBERS as readonly string[]).includes(key) && key !== 'encrypted' && key !== 'mentioned'));
  const number = (key: (typeof PAYLOAD_NUMBERS)[number]): number => Number(data[key] ?? 0);
  return {
    ...(notification.title === undefined ? {} : { title: notification.title }),
    body: notification.body,
    tag: notification.collapseKey,
    badge: notification.badge,
    thread_id: number('thread_id'),
    seq: number('seq'),
    message_id: number('message_id'),
    encrypted: data.encrypted === 'true',
    ...(data.mentioned === 'true' ? { mentioned: true as const } : {}),
    ...(Object.keys(rest).length > 0 ? { data: rest } : {}),
  };
}
