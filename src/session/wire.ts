import { messageJson, userJson } from '../protocol/encode.js';
import type { AccountKeyJson, DeviceKeysJson, DeviceMessageJson, MemberJson, PresenceJson, ThreadJson } from '../protocol/frames.js';
import type { AccountKey, DeviceKeys, DeviceMessage, Member, PresenceView, ThreadView } from '../services/types.js';

/**
 * Domain values → the JSON shapes of docs/protocol.md. Users and messages are
 * mapped by protocol/encode.ts (one mapper each, shared with HTTP and the
 * message event's encoder); re-exported here for the handlers.
 */
export { messageJson, userJson };

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
