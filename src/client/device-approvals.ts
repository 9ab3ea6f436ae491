import type { Call } from './connection.js';
import type { DeviceDirectory } from './device-directory.js';
import { certifyDevice } from './device-keys.js';
import type { DeviceMailbox } from './device-mailbox.js';
import type { OwnDevice as OwnDeviceInfo } from './e2e-types.js';
import { ClientError } from './errors.js';
import type { OwedGrants } from './owed-grants.js';
import type { OwnDevice } from './own-device.js';
import type { Sodium } from './sodium.js';

/**
 * This user's devices (docs/client.md, "The account key"): listing them, and
 * approving a pending one (its fingerprint compared by the user, certified
 * with the account key, then handed the account key as a device message).
 * Each call first asks the server for this user's devices afresh.
 */
export class DeviceApprovals {
  constructor(
    private readonly sodium: Sodium,
    private readonly own: OwnDevice,
    private readonly directory: DeviceDirectory,
    private readonly mailbox: DeviceMailbox,
    private readonly call: Call,
    /** keys_get for this user, learned into the directory. */
    private readonly fetchOwn: () => Promise<void>,
    private readonly owed: OwedGrants,
  ) {}

  async list(): Promise<OwnDeviceInfo[]> {
    await this.fetchOwn();
    const own = this.own;
    const others = this.directory.reportedFor(new Set([own.user])).filter((device) => device.device_id !== own.deviceId);
    const listed: OwnDeviceInfo[] = others.map((device) => ({
      device_id: device.device_id,
      fingerprint: device.fingerprint,
      state: device.revoked ? 'revoked' : this.directory.isTrusted(device.device_id) ? 'approved' : 'pending',
    }));
    // This device from its own keys, never from the server's report (review C2).
    listed.push({ device_id: own.deviceId as number, fingerprint: own.fingerprint(), state: 'this' });
    return listed.sort((a, b) => a.device_id - b.device_id);
  }

  async approve(deviceId: number, fingerprint: string): Promise<void> {
    const grant = this.own.accountGrant();
    await this.fetchOwn();
    const device = this.directory.reportOf(deviceId);
    if (!device || device.user_id !== this.own.user || device.revoked || deviceId === this.own.deviceId) {
      throw new ClientError('not_found', `device ${deviceId} is not another current device of this account with keys`, false);
    }
    if (fingerprint.replace(/\s+/g, '') !== device.fingerprint.replace(/\s+/g, '')) {
      throw new ClientError('invalid_field', `the fingerprint does not match device ${deviceId}'s: not approved (compare the code the new device shows)`, false);
    }
    const accountSignature = certifyDevice(this.sodium, device, grant.account_secret);
    await this.call({ type: 'device_approve', device_id: deviceId, account_signature: accountSignature });
    this.directory.pinApproved(device, accountSignature);
    // Owed before it is sent: a grant that does not get through now is sent again at every connect.
    await this.owed.add(deviceId);
    await this.deliver(deviceId);
  }

  /**
   * Sends the account key to a device approved here, and settles the debt;
   * a device no longer to be sent to (revoked, not approved under the key
   * this device holds, or this device no longer approved) settles it too.
   * Other failures throw and leave it owed.
   */
  async deliver(deviceId: number): Promise<void> {
    try {
      await this.mailbox.send(this.call, deviceId, 'account_key', this.own.accountGrant());
    } catch (error) {
      if (!(error instanceof ClientError) || (error.code !== 'not_found' && error.code !== 'forbidden')) throw error;
    }
    await this.owed.settled(deviceId);
  }
}
