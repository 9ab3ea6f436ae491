import { messageJson, userJson } from '../protocol/encode.js';
import { PROTOCOL_VERSION, type ServerFrame } from '../protocol/frames.js';
import type { AccountKeyJson, DeviceKeysJson, DeviceMessageJson, HiddenJson, MemberJson, PresenceJson, ThreadJson } from '../protocol/frames.js';
import type { AccountKey, DeviceKeys, DeviceMessage, HiddenMessage, Member, PresenceView, Principal, ThreadView } from '../services/types.js';

/**
 * Domain values → the JSON shapes of docs/protocol.md. Users and messages are
 * mapped by protocol/encode.ts (one mapper each, shared with HTTP and the
 * message event's encoder).
 */

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

/** What the welcome tells the client of the server's settings (a part of SessionSettings). */
export interface WelcomeSettings {
  readonly heartbeatIntervalMs: number;
  readonly heartbeatTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxBodyBytes: number;
  readonly framesPerSecond: number;
  readonly historyPageMax: number;
  readonly maxGroupMembers: number;
  readonly userSendsPerSecond: number;
  readonly maxConnectionsPerDevice: number;
}

/** The answer to a good auth frame: who this is, and the limits the client must keep (docs/protocol.md, "Connecting"). */
export function hiddenJson(hidden: HiddenMessage): HiddenJson {
  return { id: hidden.id, thread_id: hidden.threadId, message_id: hidden.messageId };
}

export function welcomeFrame(id: string, principal: Principal, epoch: string, settings: WelcomeSettings): ServerFrame {
  return {
    type: 'welcome',
    id,
    protocol: PROTOCOL_VERSION,
    epoch,
    user: userJson(principal.user),
    device_id: principal.deviceId,
    heartbeat_interval_ms: settings.heartbeatIntervalMs,
    heartbeat_timeout_ms: settings.heartbeatTimeoutMs,
    limits: {
      max_frame_bytes: settings.maxFrameBytes,
      max_body_bytes: settings.maxBodyBytes,
      frames_per_second: settings.framesPerSecond,
      history_page_max: settings.historyPageMax,
      max_group_members: settings.maxGroupMembers,
      user_sends_per_second: settings.userSendsPerSecond,
      max_connections_per_device: settings.maxConnectionsPerDevice,
    },
  };
}
