import type { ClientStore } from './store.js';

/**
 * Own devices approved here whose account-key grant has not reached the
 * server yet: device_approve committed, then the device_send
 * failed (a dropped connection, the target's queue full). Kept in the store
 * and sent again at every connect until the server takes it or the device is
 * gone; without this the new device stays approved on the server but never
 * gets the key.
 */
export class OwedGrants {
  private owed: readonly number[] = [];
  /** One retry pass at a time. */
  private running: Promise<void> = Promise.resolve();

  constructor(private readonly store: ClientStore) {}

  load(owed: readonly number[] | undefined): void {
    this.owed = owed ?? [];
  }

  async add(deviceId: number): Promise<void> {
    if (this.owed.includes(deviceId)) return;
    this.owed = [...this.owed, deviceId];
    await this.store.setE2e('owedGrants', this.owed);
  }

  async settled(deviceId: number): Promise<void> {
    if (!this.owed.includes(deviceId)) return;
    this.owed = this.owed.filter((id) => id !== deviceId);
    await this.store.setE2e('owedGrants', this.owed);
  }

  list(): readonly number[] {
    return this.owed;
  }

  /** Sends each owed grant with `send` (which settles it when done with); a failure keeps it for the next pass. */
  retry(send: (deviceId: number) => Promise<void>, report: (error: unknown) => void): Promise<void> {
    const pass = this.running.then(async () => {
      for (const deviceId of this.owed) {
        try {
          await send(deviceId);
        } catch (error) {
          report(error);
        }
      }
    });
    this.running = pass.catch(() => undefined);
    return pass;
  }
}
