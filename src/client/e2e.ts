import type { MessageJson, ThreadJson } from '../protocol/frames.js';
import type { ReplyOf } from './connection.js';
import type { E2eState } from './e2e-records.js';
import type {
  AccountStanding, ClientMessage, DeviceFingerprint, DeviceRequest, IdentityChange, KeyChange, OwnDevice, SafetyNumber,
} from './e2e-types.js';
import type { AccountChangedEvent, DeviceMessageEvent, KeysChangedV2Event } from './e2e-wire.js';
import { ClientError } from './errors.js';
import type { RequestJson } from './requests.js';
import type { ClientStore, OutboxEntry } from './store.js';

export type Call = <R extends RequestJson>(request: R) => Promise<ReplyOf[R['type']]>;

/** What the session tells the client (and the client the app). */
export interface E2eEvents {
  readonly keys: (change: KeyChange) => void;
  readonly identity: (change: IdentityChange) => void;
  readonly deviceRequest: (request: DeviceRequest) => void;
  readonly account: (standing: AccountStanding) => void;
  /** Alarms (ClientError `key_mismatch`, `untrusted_devices`, `encryption_downgrade`) and problems worked around. */
  readonly error: (error: unknown) => void;
}

export interface E2eSessionOptions {
  readonly store: ClientStore;
  /** The client's request path (waits for a connection). */
  readonly call: Call;
  /** Revokes one of this user's devices (the HTTP API). */
  readonly revokeDevice: (deviceId: number) => Promise<void>;
  readonly events: E2eEvents;
  /** `encryption: 'always'`. */
  readonly always: boolean;
  readonly oldKeysTtlMs: number;
}

const notYet = (): never => {
  throw new ClientError('internal', 'not implemented yet', false);
};

/**
 * End-to-end encryption for one client (docs/e2e.md).
 */
export class E2eSession {
  constructor(private readonly options: E2eSessionOptions) {}

  /** The store's encryption fields, at start. */
  load(_state: E2eState): void {
    void this.options;
  }

  /** After `welcome`: this device's keys and standing settled, the directory loaded, device messages drained. */
  connected(_userId: number, _deviceId: number, _call: Call): Promise<void> {
    return Promise.resolve();
  }

  /** A `keys_changed`, `account_changed` or `device_message` event. */
  event(_event: KeysChangedV2Event | AccountChangedEvent | DeviceMessageEvent): void {}

  /** Whether a send to this thread must be encrypted (asked, required, ever seen encrypted, or `always`). */
  mustEncrypt(_threadId: number, _thread: ThreadJson | undefined): boolean {
    return notYet();
  }

  /** The server's view of a thread: remembered when it requires encryption; a requirement that went away is an alarm. */
  threadSeen(_thread: ThreadJson): void {}

  seal(_entry: OutboxEntry): { body: unknown } | { wait: Promise<void> } {
    return notYet();
  }

  refreshThread(_threadId: number, _refusal?: ClientError): Promise<void> {
    return notYet();
  }

  openNow(_message: MessageJson): ClientMessage | undefined {
    return notYet();
  }

  open(_message: MessageJson): Promise<ClientMessage> {
    return notYet();
  }

  devices(): Promise<OwnDevice[]> {
    return notYet();
  }

  approveDevice(_deviceId: number, _fingerprint: string): Promise<void> {
    return notYet();
  }

  rejectDevice(_deviceId: number): Promise<void> {
    return notYet();
  }

  ownFingerprint(): string {
    return notYet();
  }

  safetyNumber(_userId: number): Promise<SafetyNumber> {
    return notYet();
  }

  verifyQr(_userId: number, _scanned: string): Promise<boolean> {
    return notYet();
  }

  markVerified(_userId: number, _verified: boolean): Promise<void> {
    return notYet();
  }

  acceptIdentity(_userId: number): Promise<void> {
    return notYet();
  }

  fingerprints(_userId: number): Promise<DeviceFingerprint[]> {
    return notYet();
  }

  rotate(): Promise<string> {
    return notYet();
  }
}
