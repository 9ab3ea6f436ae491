import type { Clock } from '../clock.js';
import type { DeliveryStorage, OfflineRules } from '../storage/ports/delivery.js';
import type { Broker } from './live/broker.js';
import type { DeviceLinks, Link } from './live/device-links.js';
import type { Message, PushQueueListener } from './types.js';

export interface DeliverySettings {
  readonly maxMessages: number;
  readonly readDiffusionAbove: number;
  /** The push providers configured: a device going offline gets notifications queued only for these. */
  readonly push: OfflineRules['push'];
  readonly inboxMaxAgeMs: number;
}

export interface DeliveryDeps {
  readonly storage: DeliveryStorage;
  readonly links: DeviceLinks;
  /** Tells the node whose link lost a device's liveness (when it is another node). */
  readonly broker: Pick<Broker, 'publishControl'>;
  readonly clock: Clock;
  readonly pushes: PushQueueListener;
  readonly settings: DeliverySettings;
}

/**
 * The handover between a device's offline inbox and its live connection: the
 * inbox is read first, then the connection follows its threads live, and
 * nothing stored in between is lost. Only a device's newest connection keeps
 * it live: a new one (often while an old, dead one lingers until its
 * heartbeat deadline) first turns what the old one got live into inbox rows,
 * so the new one's inbox has it. Which link is live is the DeviceLinks'
 * (one owner, across nodes); the writes are the DeliveryStorage's.
 */
export class DeliveryService {
  constructor(private readonly deps: DeliveryDeps) {}

  /**
   * A connection of the device authenticated (and is attached to the links)
   * and is about to read its inbox. Ends the device's liveness on any older
   * link, on any node, and writes the handover; resolves once the inbox may
   * be read (the handover committed). Rejects when the write failed: the
   * inbox would miss what the old link got live.
   *
   * The database's live mark, not the links, says whether there is something
   * to hand over: an old link whose close already ended its liveness (on this
   * node or another) may not have committed its handover yet. While the mark
   * is set, this connection runs the handover unit too and waits for it
   * (after or before the old link's, it writes the same rows once: the first
   * to run unmarks the device, the other finds nothing to do). A device not
   * marked live (the common case: it was offline) costs one read, no commit.
   */
  async connectionOpened(link: Link): Promise<void> {
    const { links, broker, storage } = this.deps;
    const ended = await links.endLiveness(link.deviceId);
    if (ended !== undefined && !links.isLocal(ended)) broker.publishControl({ kind: 'device_live', deviceId: link.deviceId, key: ended });
    if (ended !== undefined || (await storage.isLive(link.deviceId))) await this.goOffline(link.deviceId);
  }

  /**
   * The link follows the device's threads live from now on: no more inbox rows
   * for the device. Call it once the link is subscribed, so a message stored
   * before the mark commits has an inbox row or reaches the link live (or
   * both: clients dedupe).
   */
  async connectionLive(link: Link): Promise<void> {
    await this.deps.links.markLive(link);
    await this.deps.storage.goLive(link.deviceId);
  }

  /**
   * A connection ended (call after unsubscribing it). If the device was live on
   * it, what the device got live and has not acknowledged goes to its inbox,
   * and messages stored from now on write inbox rows again. Resolves once
   * that is committed; a failure is the caller's to log (the device's next
   * connection runs the handover again before reading its inbox).
   */
  async connectionClosed(link: Link): Promise<void> {
    if (await this.deps.links.detach(link)) await this.goOffline(link.deviceId);
  }

  /**
   * A dead node's link `key` held the device's liveness (see NodeWatch):
   * writes the handover as the link's close would have, then ends the
   * liveness if that link still holds it. In that order: a handover that
   * fails leaves the dead node listed as holding the device, so the next
   * sweep (here or on another node) tries again, where the other order would
   * lose the device's live mark for good (no inbox rows, no push, until it
   * connects again). Two survivors doing this at once hand over once (the
   * unit finds the device unmarked the second time).
   */
  async releaseDeadLink(deviceId: number, key: string): Promise<void> {
    await this.goOffline(deviceId);
    await this.deps.links.release(deviceId, key);
  }

  /** Another node took the device's liveness from link `key` of this node. */
  livenessTaken(deviceId: number, key: string): void {
    this.deps.links.forgetLiveness(deviceId, key);
  }

  /**
   * At start-up: the devices that were live when the process stopped without
   * closing their connections (a crash, a kill) get their unacknowledged live
   * messages into their inbox. Resolves to how many devices that was.
   * (Several nodes: only while no node serves connections, e.g. a cluster's
   * first start; a node joining a running cluster must not call it.)
   */
  async recoverLiveDevices(): Promise<number> {
    const recovered = await this.deps.storage.recoverLiveDevices(this.rules());
    if (recovered > 0) this.deps.pushes.pushQueued();
    return recovered;
  }

  /**
   * A page of the device's offline inbox after message `afterId`, oldest first,
   * and whether the inbox overflowed (it was dropped: the device must sync by
   * cursors), read together. An empty page (the inbox is through) names the
   * threads to follow, from the same snapshot.
   */
  async inboxPage(deviceId: number, afterId: number, limit: number): Promise<{ messages: Message[]; overflowed: boolean; followedThreadIds: number[] }> {
    const page = await this.deps.storage.inboxPage(deviceId, afterId, limit);
    return { messages: page.messages, overflowed: page.overflowed, followedThreadIds: page.followedThreadIds ?? [] };
  }

  /** Whether the device's inbox overflowed and was dropped: it must sync by cursors. */
  inboxOverflowed(deviceId: number): Promise<boolean> {
    return this.deps.storage.inboxOverflowed(deviceId);
  }

  /** Drops inbox rows past the age bound; their devices will sync by cursors. Resolves to the devices affected. */
  expireInboxes(): Promise<number[]> {
    return this.deps.storage.expireInboxes(this.deps.clock.now() - this.deps.settings.inboxMaxAgeMs);
  }

  /**
   * The device is no longer live: what it got live and did not ack goes to its
   * inbox, and (it may be a phone whose app was suspended) a notification per
   * thread is queued for it. Writes nothing if the database has it unmarked.
   */
  private async goOffline(deviceId: number): Promise<void> {
    const outcome = await this.deps.storage.goOffline(deviceId, this.rules());
    if (outcome.pushesQueued) this.deps.pushes.pushQueued();
  }

  private rules(): OfflineRules {
    const { settings, clock } = this.deps;
    return { readDiffusionAbove: settings.readDiffusionAbove, maxMessages: settings.maxMessages, push: settings.push, now: clock.now() };
  }
}
