import type { ClientFrame, ServerFrame, UserRefJson } from '../protocol/frames.js';
import type { ContactService } from '../services/contacts.js';
import type { DeviceMessageService } from '../services/device-messages.js';
import type { MessagingService } from '../services/messaging.js';
import type { PresenceService } from '../services/presence.js';
import type { KeyService } from '../services/keys.js';
import type { PushTokenService } from '../services/push-tokens.js';
import type { ThreadDetails, ThreadService } from '../services/threads.js';
import type { UserRef } from '../services/users.js';
import type { Principal } from '../services/types.js';
import { accountKeyJson, deviceKeysJson, deviceMessageJson, memberJson, messageJson, presenceJson, threadJson, userJson } from './wire.js';

export interface ChatServices {
  readonly messaging: MessagingService;
  readonly threads: ThreadService;
  readonly contacts: ContactService;
  readonly presence: PresenceService;
  readonly pushTokens: PushTokenService;
  readonly keys: KeyService;
  readonly deviceMessages: DeviceMessageService;
}

/** The requests of an authenticated connection (auth and ping are the session's own). */
export type ChatFrame = Exclude<ClientFrame, { type: 'auth' | 'ping' }>;

/** A reply, or a reply with work to do right after it is sent (the fanout that follows an ack). */
export type Reply = ServerFrame | { readonly reply: ServerFrame; readonly afterReply: () => void };

type Handlers = {
  [T in ChatFrame['type']]: (frame: Extract<ChatFrame, { type: T }>, principal: Principal) => Reply | Promise<Reply>;
};

/**
 * One function per request type: call the service, turn its result into the
 * reply frame. Rules live in the services; errors they throw become error frames
 * in the session.
 */
export function chatHandlers(services: ChatServices): Handlers {
  const { messaging, threads, contacts, presence, pushTokens, keys, deviceMessages } = services;
  const threadReply = (id: string, details: ThreadDetails): ServerFrame => ({
    type: 'thread',
    id,
    thread: threadJson(details.thread),
    members: details.members.map(memberJson),
  });

  return {
    send: async (f, p) => {
      const { message, duplicate, publish } = await messaging.send(p, {
        threadId: f.thread_id,
        clientMsgId: f.client_msg_id,
        kind: f.kind,
        bodyJson: f.body_json,
      });
      const ack: ServerFrame = {
        type: 'ack',
        id: f.id,
        thread_id: message.threadId,
        seq: message.seq,
        message_id: message.id,
        client_msg_id: message.clientMsgId,
        created_at: message.createdAt,
        duplicate,
      };
      return { reply: ack, afterReply: publish };
    },
    delivered: async (f, p) => {
      const result = await messaging.delivered(p, f.thread_id, f.seq);
      return { type: 'delivered', id: f.id, thread_id: result.threadId, seq: result.seq };
    },
    read: async (f, p) => {
      const result = await messaging.read(p, f.thread_id, f.seq);
      return { type: 'read_state', id: f.id, thread_id: result.threadId, read_seq: result.readSeq, unread: result.unread, total_unread: result.totalUnread };
    },
    history: (f, p) => {
      const page = messaging.history(p, f.thread_id, f.anchor, f.limit);
      return {
        type: 'messages',
        id: f.id,
        thread_id: page.threadId,
        messages: page.messages.map(messageJson),
        has_more_before: page.hasMoreBefore,
        has_more_after: page.hasMoreAfter,
      };
    },
    jump: (f, p) => {
      const { threadId, seq } = messaging.seqOfMessage(p, f.message_id);
      const page = messaging.history(p, threadId, { around: seq }, f.limit);
      return {
        type: 'messages',
        id: f.id,
        thread_id: threadId,
        messages: page.messages.map(messageJson),
        has_more_before: page.hasMoreBefore,
        has_more_after: page.hasMoreAfter,
      };
    },
    sync: (f, p) => ({
      type: 'sync',
      id: f.id,
      threads: messaging.sync(p, f.cursors).map((t) => ({ thread_id: t.threadId, last_seq: t.lastSeq, messages: t.messages.map(messageJson), has_more: t.hasMore })),
    }),
    threads: (f, p) => {
      const list = threads.list(p);
      return { type: 'threads', id: f.id, threads: list.threads.map(threadJson), total_unread: list.totalUnread };
    },
    thread_get: (f, p) => threadReply(f.id, threads.details(p, f.thread_id)),
    direct_open: (f, p) => threadReply(f.id, threads.openDirect(p, userRef(f.user))),
    group_create: (f, p) => threadReply(f.id, threads.createGroup(p, f.title, f.members.map(userRef), { e2eRequired: f.e2e_required })),
    require_e2e: (f, p) => threadReply(f.id, threads.requireE2e(p, f.thread_id)),
    group_add: (f, p) => threadReply(f.id, threads.addMembers(p, f.thread_id, f.members.map(userRef))),
    group_remove: (f, p) => {
      threads.removeMember(p, f.thread_id, userRef(f.user));
      return { type: 'ok', id: f.id };
    },
    group_leave: (f, p) => {
      threads.leave(p, f.thread_id);
      return { type: 'ok', id: f.id };
    },
    group_rename: (f, p) => threadReply(f.id, threads.rename(p, f.thread_id, f.title)),
    group_role: (f, p) => threadReply(f.id, threads.setRole(p, f.thread_id, userRef(f.user), f.role)),
    thread_settings: (f, p) => {
      return threadReply(f.id, threads.updateSettings(p, f.thread_id, { muted: f.muted, label: f.label }));
    },
    typing: (f, p) => {
      messaging.typing(p, f.thread_id);
      return { type: 'ok', id: f.id };
    },
    presence: async (f, p) => ({ type: 'presence', id: f.id, users: (await presence.statusFor(p.user.id, f.user_ids)).map(presenceJson) }),
    contacts: async (f, p) => {
      const list = contacts.list(p);
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
    contact_add: (f, p) => {
      contacts.add(p, userRef(f.user));
      return { type: 'ok', id: f.id };
    },
    contact_remove: (f, p) => {
      contacts.remove(p, f.user_id);
      return { type: 'ok', id: f.id };
    },
    push_register: (f, p) => {
      pushTokens.register(p, { platform: f.platform, token: f.token, topic: f.topic });
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
    keys_get: (f, p) => {
      const found = keys.keys(p, f.user_ids);
      return { type: 'keys', id: f.id, accounts: found.accounts.map(accountKeyJson), devices: found.devices.map(deviceKeysJson) };
    },
    device_send: (f, p) => {
      deviceMessages.send(p, f.device_id, f.payload);
      return { type: 'ok', id: f.id };
    },
    device_messages: (f, p) => {
      const page = deviceMessages.page(p, f.after, f.limit);
      return { type: 'device_messages', id: f.id, messages: page.messages.map(deviceMessageJson), more: page.more };
    },
    device_messages_ack: (f, p) => {
      deviceMessages.ack(p, f.up_to);
      return { type: 'ok', id: f.id };
    },
    push_unregister: (f, p) => {
      pushTokens.unregister(p);
      return { type: 'ok', id: f.id };
    },
  };
}

function userRef(ref: UserRefJson): UserRef {
  return 'user_id' in ref ? { userId: ref.user_id } : { username: ref.username };
}
