/**
 * The protocol-2 encryption frames as the SDK reads them (docs/protocol.md,
 * "End-to-end encryption"; the shared spec, sections 1 and 3). Kept on the
 * client's side of the seam: the SDK checks every field it uses itself, it
 * does not take the server's decoder's word for them.
 */

/** A device's public keys: `account_signature` null while it waits for approval. */
export interface DeviceKeysV2Json {
  readonly user_id: number;
  readonly device_id: number;
  readonly enc_key: string;
  readonly sign_key: string;
  readonly counter: number;
  readonly signature: string;
  readonly account_signature: string | null;
  readonly revoked: boolean;
}

/** A user's account key, signed by itself. */
export interface AccountKeyJson {
  readonly user_id: number;
  readonly account_key: string;
  readonly signature: string;
}

export interface KeysV2ReplyFrame {
  readonly type: 'keys';
  readonly id: string;
  readonly accounts: readonly AccountKeyJson[];
  readonly devices: readonly DeviceKeysV2Json[];
}

export interface KeysChangedV2Event extends DeviceKeysV2Json {
  readonly type: 'keys_changed';
}

export interface AccountChangedEvent extends AccountKeyJson {
  readonly type: 'account_changed';
}

/** An opaque message from another device of the same user (sealed to this one). */
export interface DeviceMessageJson {
  readonly id: number;
  readonly from_device: number;
  readonly payload: string;
  readonly created_at: number;
}

export interface DeviceMessageEvent {
  readonly type: 'device_message';
  readonly message: DeviceMessageJson;
}

export interface DeviceMessagesReplyFrame {
  readonly type: 'device_messages';
  readonly id: string;
  readonly messages: readonly DeviceMessageJson[];
  readonly more: boolean;
}
