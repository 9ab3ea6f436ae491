import type { ClientFrame, ServerFrame, UserRefJson } from '../protocol/frames.js';
import type { ContactService } from '../services/contacts.js';
import type { DeviceMessageService } from '../services/device-messages.js';
import type { HistoryService } from '../services/history.js';
import type { ChangeResult, MessageChangeService } from '../services/message-changes.js';
import type { MessagingService } from '../services/messaging.js';
import type { PresenceService } from '../services/presence.js';
import type { KeyService } from '../services/keys.js';
import type { PushTokenService } from '../services/push-tokens.js';
import type { SearchService } from '../services/search.js';
import type { ThreadDetails, ThreadService } from '../services/threads.js';
import type { UserSearchService } from '../services/user-search.js';
import type { UserRef } from '../services/users.js';
import type { Message, Principal } from '../services/types.js';
import { messageJson, userJson } from '../protocol/encode.js';
import { accountKeyJson, deviceKeysJson, deviceMessageJson, hiddenJson, memberJson, presenceJson, threadJson } from './wire.js';

export interface ChatServices {
  readonly messaging: MessagingService;
  /** Edits, deletes, reactions, hidden messages. */
  readonly changes: MessageChangeService;
  readonly history: HistoryService;
  readonly threads: ThreadService;
  readonly contacts: ContactService;
  readonly presence: PresenceService;
  readonly pushTokens: PushTokenService;
  readonly keys: KeyService;
  readonly deviceMessages: DeviceMessageService;
  readonly people: UserSearchService;
  readonly search: SearchService;
}

/** The requests of an authenticated connection (auth and ping are the session's own). */
export type ChatFrame = Exclude<ClientFrame, { type: 'auth' | 'ping' }>;

/** The requests answered by one reply frame: all but send, whose answer (ack, then announce) the session writes itself. */
export type RequestFrame = Exclude<ChatFrame, { type: 'send' }>;

/**
 * A reply and what must follow it in the same gathered turn: the ack of a
 * stored change message, then its announcement to the thread (as for send:
 * the sender hears the ack before the event).
 */
export interface AckThenAnnounce {
  readonly reply: ServerFrame;
  readonly announce: () => void;
}

/** Every handler is async: its reply (or its error) is written when the services' promise settles. */
type Handlers = {
  [T in RequestFrame['type']]: (frame: Extract<RequestFrame, { type: T }>, principal: Principal) => Promise<ServerFrame | AckThenAnnounce>;
};

/** The ack of a send: what the storing unit reported. */
export function ackFrame(id: string, message: Message, duplicate: boolean): ServerFrame {
  return {
    type: 'ack',
    id,
    thread_id: message.threadId,
    seq: message.seq,
    message_id: message.id,
    client_msg_id: message.clientMsgId,
    created_at: message.createdAt,
    duplicate,
  };
}

/**
 * One function per request type: call the service, turn its result into the
 * reply frame. Rules live in the services; errors they throw become error frames
 * in the session.
 */
export function chatHandlers(services: ChatServices): Handlers {
  const { messaging, changes, history, threads, contacts, presence, pushTokens, keys, deviceMessages, people } = services;
  // A stored change is acked and then announced; a resend is acked again, announced never; no change is `ok`.
  const changeReply = (id: string, result: ChangeResult): ServerFrame | AckThenAnnounce => {
    if (result.kind === 'unchanged') return { type: 'ok', id };
    const reply = ackFrame(id, result.message, result.kind === 'duplicate');
    return result.kind === 'duplicate' ? reply : { reply, announce: () => changes.announce(result.message) };
  };
  const threadReply = (id: string, details: ThreadDetails): ServerFrame => ({
    type: 'thread',
    id,
    thread: threadJson(details.thread),
    members: details.members.map(memberJson),
  });

  return {
    edit: async (f, p) =>
      changeReply(f.id, await changes.edit(p, { messageId: f.message_id, clientMsgId: f.client_msg_id, kind: f.kind, bodyJson: f.body_json, mentions: f.mentions })),
    delete: async (f, p) => {
      if (f.for === 'me') {
        await changes.deleteForMe(p, f.message_id);
        return { type: 'ok', id: f.id };
      }
      // The decoder requires client_msg_id for everyone.
      return changeReply(f.id, await changes.deleteForEveryone(p, f.message_id, f.client_msg_id ?? ''));
    },
    react: async (f, p) => changeReply(f.id, await changes.react(p, f.message_id, f.emoji, f.on, f.client_msg_id)),
    hidden: async (f, p) => {
      const page = await changes.hidden(p, f.after, f.limit);
      return { type: 'hidden', id: f.id, items: page.items.map(hiddenJson), more: page.more };
    },
    delivered: async (f, p) => {
      const result = await messaging.delivered(p, f.thread_id, f.seq);
      return { type: 'delivered', id: f.id, thread_id: result.threadId, seq: result.seq };
    },
    read: async (f, p) => {
      const result = await messaging.read(p, f.thread_id, f.seq);
      return { type: 'read_state', id: f.id, thread_id: result.threadId, read_seq: result.readSeq, unread: result.unread, total_unread: result.totalUnread };
    },
    receipts: async (f, p) => {
      const result = await messaging.receipts(p, f.thread_id, f.seq);
      return { type: 'receipts', id: f.id, thread_id: result.threadId, seq: result.seq, read: result.read, delivered: result.delivered, pending: result.pending };
    },
    history: async (f, p) => {
      const page = await history.history(p, f.thread_id, f.anchor, f.limit);
      return {
        type: 'messages',
        id: f.id,
        thread_id: page.threadId,
        messages: page.messages.map(messageJson),
        has_more_before: page.hasMoreBefore,
        has_more_after: page.hasMoreAfter,
      };
    },
    jump: async (f, p) => {
      const { threadId, seq } = await history.seqOfMessage(p, f.message_id);
      const page = await history.history(p, threadId, { around: seq }, f.limit);
      return {
        type: 'messages',
        id: f.id,
        thread_id: threadId,
        messages: page.messages.map(messageJson),
        has_more_before: page.hasMoreBefore,
        has_more_after: page.hasMoreAfter,
      };
    },
    search: async (f, p) => {
      const page = await services.search.search(p, {
        query: f.query,
        threadId: f.thread_id,
        senderId: f.sender_id,
        after: f.after,
        before: f.before,
        cursor: f.cursor,
        limit: f.limit,
      });
      return {
        type: 'search_results',
        id: f.id,
        results: page.results.map((hit) => ({ message: messageJson(hit.message), snippet: hit.snippet, highlights: hit.highlights })),
        next_cursor: page.nextCursor,
      };
    },
    sync: async (f, p) => ({
      type: 'sync',
      id: f.id,
      threads: (await history.sync(p, f.cursors)).map((t) => ({ thread_id: t.threadId, last_seq: t.lastSeq, messages: t.messages.map(messageJson), has_more: t.hasMore })),
    }),
    threads: async (f, p) => {
      const list = await threads.list(p);
      return { type: 'threads', id: f.id, threads: list.threads.map(threadJson), total_unread: list.totalUnread };
    },
    thread_get: async (f, p) => threadReply(f.id, await threads.details(p, f.thread_id)),
    direct_open: async (f, p) => threadReply(f.id, await threads.openDirect(p, userRef(f.user))),
    group_create: async (f, p) => threadReply(f.id, await threads.createGroup(p, f.title, f.members.map(userRef), { e2eRequired: f.e2e_required })),
    require_e2e: async (f, p) => threadReply(f.id, await threads.requireE2e(p, f.thread_id)),
    group_add: async (f, p) => threadReply(f.id, await threads.addMembers(p, f.thread_id, f.members.map(userRef))),
    group_remove: async (f, p) => {
      await threads.removeMember(p, f.thread_id, userRef(f.user));
      return { type: 'ok', id: f.id };
    },
    group_leave: async (f, p) => {
      await threads.leave(p, f.thread_id);
      return { type: 'ok', id: f.id };
    },
    group_rename: async (f, p) => threadReply(f.id, await threads.rename(p, f.thread_id, f.title)),
    group_role: async (f, p) => threadReply(f.id, await threads.setRole(p, f.thread_id, userRef(f.user), f.role)),
    thread_settings: async (f, p) => {
      return threadReply(f.id, await threads.updateSettings(p, f.thread_id, { muted: f.muted, label: f.label }));
    },
    typing: async (f, p) => {
      await messaging.typing(p, f.thread_id);
      return { type: 'ok', id: f.id };
    },
    presence: async (f, p) => ({ type: 'presence', id: f.id, users: (await presence.statusFor(p.user.id, f.user_ids)).map(presenceJson) }),
    contacts: async (f, p) => {
      const list = await contacts.list(p);
      const visible = new Map((await presence.statusFor(p.user.id, list.map((c) => c.user.id))).map((s) => [s.userId, s]));
      return {
        type: 'contacts',
        id: f.id,
        contacts: list.map((c) => {
          const status = visible.get(c.user.id);
          return { user: userJson(c.user), added_at: c.addedAt, presence: status ? presenceJson(status) : null };
        }),
      };
    },
    contact_add: async (f, p) => {
      await contacts.add(p, userRef(f.user));
      return { type: 'ok', id: f.id };
    },
    contact_remove: async (f, p) => {
      await contacts.remove(p, f.user_id);
      return { type: 'ok', id: f.id };
    },
    users_search: async (f, p) => ({ type: 'users', id: f.id, users: (await people.search(p, f.query, f.limit)).map(userJson) }),
    push_register: async (f, p) => {
      await pushTokens.register(p, { platform: f.platform, token: f.token, topic: f.topic });
      return { type: 'ok', id: f.id };
    },
    keys_publish: async (f, p) => {
      await keys.publish(p, { encKey: f.enc_key, signKey: f.sign_key, counter: f.counter, signature: f.signature, accountSignature: f.account_signature });
      return { type: 'ok', id: f.id };
    },
    account_publish: async (f, p) => {
      await keys.publishAccount(p, { accountKey: f.account_key, signature: f.signature, reset: f.reset, password: f.password });
      return { type: 'ok', id: f.id };
    },
    device_approve: async (f, p) => {
      await keys.approve(p, f.device_id, f.account_signature);
      return { type: 'ok', id: f.id };
    },
    keys_get: async (f, p) => {
      const found = await keys.keys(p, f.user_ids);
      return { type: 'keys', id: f.id, accounts: found.accounts.map(accountKeyJson), devices: found.devices.map(deviceKeysJson) };
    },
    device_send: async (f, p) => {
      await deviceMessages.send(p, f.device_id, f.payload);
      return { type: 'ok', id: f.id };
    },
    device_messages: async (f, p) => {
      const page = await deviceMessages.page(p, f.after, f.limit);
      return { type: 'device_messages', id: f.id, messages: page.messages.map(deviceMessageJson), more: page.more };
    },
    device_messages_ack: async (f, p) => {
      await deviceMessages.ack(p, f.up_to);
      return { type: 'ok', id: f.id };
    },
    push_unregister: async (f, p) => {
      await pushTokens.unregister(p);
      return { type: 'ok', id: f.id };
    },
  };
}

function userRef(ref: UserRefJson): UserRef {
  return 'user_id' in ref ? { userId: ref.user_id } : { username: ref.username };
}
