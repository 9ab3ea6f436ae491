import type { AccountKeyJson, DeviceKeysJson, DeviceMessageJson, MemberJson, MessageJson, PresenceJson, ThreadJson, UserJson } from '../protocol/frames.js';
import type { AccountKey, DeviceKeys, DeviceMessage, Member, Message, PresenceView, ThreadView, User } from '../services/types.js';

/** Domain values → the JSON shapes of docs/protocol.md. */

export function userJson(user: User): UserJson {
  return { id: user.id, username: user.username, display_name: user.displayName };
}

export function messageJson(message: Message): MessageJson {
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
  };
}

/**
 * The `message` event's text, the same as encodeFrame({ type: 'message',
 * message: messageJson(message) }) gives, with the stored body spliced in as
 * it is: it is compact JSON already (decode.ts re-encoded it), and parsing it
 * only to encode it again was a large share of the fanout's cost.
 */
export function messageEventText(message: Message): string {
  return (
    `{"type":"message","message":{"id":${message.id},"thread_id":${message.threadId},"seq":${message.seq},` +
    `"sender_id":${message.senderUserId},"sender_device_id":${message.senderDeviceId},` +
    `"client_msg_id":${JSON.stringify(message.clientMsgId)},"kind":${JSON.stringify(message.kind)},` +
    `"body":${message.bodyJson},"created_at":${message.createdAt}}}`
  );
}

export function threadJson(thread: ThreadView): ThreadJson {
  return {
    id: thread.id,
    kind: thread.kind,
    title: thread.title,
    peer: thread.peer ? userJson(thread.peer) : null,
    created_at: thread.createdAt,
    last_seq: thread.lastSeq,
    last_message: thread.lastMessage ? messageJson(thread.lastMessage) : null,
    role: thread.role,
    member: thread.member,
    left_seq: thread.leftSeq,
    read_seq: thread.readSeq,
    unread: thread.unread,
    muted: thread.muted,
    label: thread.label,
    member_count: thread.memberCount,
    e2e_required: thread.e2eRequired,
  };
}

export function memberJson(member: Member): MemberJson {
  return { user: userJson(member.user), role: member.role, joined_at: member.joinedAt, read_seq: member.readSeq, delivered_seq: member.deliveredSeq };
}

export function presenceJson(presence: PresenceView): PresenceJson {
  return { user_id: presence.userId, online: presence.online, last_active_at: presence.lastActiveAt };
}

export function deviceKeysJson(keys: DeviceKeys): DeviceKeysJson {
  return {
    user_id: keys.userId,
    device_id: keys.deviceId,
    enc_key: keys.encKey,
    sign_key: keys.signKey,
    counter: keys.counter,
    signature: keys.signature,
    account_signature: keys.accountSignature,
    revoked: keys.revoked,
  };
}

export function accountKeyJson(account: AccountKey): AccountKeyJson {
  return { user_id: account.userId, account_key: account.accountKey, signature: account.signature };
}

export function deviceMessageJson(message: DeviceMessage): DeviceMessageJson {
  return { id: message.id, from_device: message.fromDevice, payload: message.payload, created_at: message.createdAt };
}
