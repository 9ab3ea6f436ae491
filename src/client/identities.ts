import type { DeviceDirectory } from './device-directory.js';
import type { DeviceFingerprint, SafetyNumber } from './e2e-types.js';
import { ClientError } from './errors.js';
import type { OwnDevice } from './own-device.js';
import { type UserKey, qrMatches, qrPayload, safetyNumber } from './safety-number.js';
import type { Sodium } from './sodium.js';

/**
 * Comparing identities with a contact (docs/client.md, "Who is who"): the
 * safety number and QR code from both pinned account keys, the verified mark,
 * and the pinned devices. Asks the server only about a user nothing is pinned
 * for (the server learns whom this client looks at: review L3).
 */
export class Identities {
  constructor(
    private readonly sodium: Sodium,
    private readonly own: OwnDevice,
    private readonly directory: DeviceDirectory,
    /** keys_get for these users, learned into the directory. */
    private readonly fetchKeys: (userIds: readonly number[]) => Promise<void>,
  ) {}

  async safetyNumber(userId: number): Promise<SafetyNumber> {
    const { own, theirs } = await this.accountKeys(userId);
    return { number: safetyNumber(this.sodium, own, theirs), qr: qrPayload(own, theirs), verified: this.directory.pinnedAccount(userId)?.verified === true };
  }

  async verifyQr(userId: number, scanned: string): Promise<boolean> {
    const { own, theirs } = await this.accountKeys(userId);
    if (!qrMatches(scanned, own, theirs)) return false;
    this.directory.setVerified(userId, true);
    return true;
  }

  async markVerified(userId: number, verified: boolean): Promise<void> {
    await this.accountKeys(userId);
    this.directory.setVerified(userId, verified);
  }

  async fingerprints(userId: number): Promise<DeviceFingerprint[]> {
    if (this.directory.pinnedOf(userId).length === 0) await this.fetchKeys([userId]);
    return this.directory.pinnedOf(userId).map((device) => ({ user_id: userId, ...device }));
  }

  /** Both pinned account keys (the other user's fetched and pinned when never seen). */
  private async accountKeys(userId: number): Promise<{ own: UserKey; theirs: UserKey }> {
    if (userId === this.own.user) throw new ClientError('invalid_field', 'a safety number is between this user and another', false);
    if (!this.directory.pinnedAccount(userId)) await this.fetchKeys([userId]);
    const theirs = this.directory.accountKeyOf(userId);
    const ownKey = this.own.accountKey;
    // Two cases a caller tells apart by the code: this device has no account key yet (it waits for approval,
    // or encryption is not set up), or the other user has never had an encrypting device.
    if (!ownKey) throw new ClientError('bad_request', 'this device has no account key yet: a safety number needs encryption set up here (and this device approved)', false);
    if (!theirs) throw new ClientError('not_found', `no account key is known for user ${userId} (they have no encrypting device yet)`, false);
    return { own: { user_id: this.own.user, account_key: ownKey }, theirs: { user_id: userId, account_key: theirs } };
  }
}
