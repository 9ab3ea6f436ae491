/**
 * One authenticated connection of a device, as the device links know it.
 * `key` is unique across nodes (node id and a counter).
 */
export interface Link {
  readonly key: string;
  readonly deviceId: number;
  readonly userId: number;
}

/**
 * The one owner of "which device is live on which connection", and of the
 * connections each device and user has on this node (centrifuge keeps the
 * same split: a hub of local clients, and a shared store for the rest).
 *
 * Liveness: a device is live on at most one link at a time, anywhere (its
 * newest connection that got through its inbox). While it is live the
 * database writes no inbox rows for it; when it stops being live, the
 * DeliveryService writes what it got live and did not acknowledge into its
 * inbox (the handover). `endLiveness`, `markLive`, `detach` and `release` are atomic
 * across nodes; `attach`, `detach`, `ofDevice` and `ofUser` index this node's
 * connections only.
 */
export interface DeviceLinks<L extends Link = Link> {
  /** A connection authenticated on this node: listed by ofDevice/ofUser until detached. Not live yet. */
  attach(link: L): void;
  /**
   * The connection closed: no longer listed. Resolves true when it held the
   * device's liveness, which ends now (compare-and-delete: a link whose
   * liveness a newer link took resolves false). True asks the caller for the handover.
   */
  detach(link: L): Promise<boolean>;
  /**
   * Ends the device's liveness if link `key` (of any node) holds it
   * (compare-and-delete); resolves true if it did, which asks the caller for
   * the handover. What detach does for a link of this node, a survivor does
   * with this for a dead node's links.
   */
  release(deviceId: number, key: string): Promise<boolean>;
  /**
   * Ends the device's liveness wherever it is, ahead of a new connection's
   * inbox. Resolves to the key of the link that held it, if any (then the
   * caller writes the handover, and tells that link's node if it is another one).
   */
  endLiveness(deviceId: number): Promise<string | undefined>;
  /** `link` (attached, following its channels) is the device's live link from now on. */
  markLive(link: L): Promise<void>;
  /**
   * Another node ended the liveness of link `key` (a `device_live` control
   * event): drops what this node remembers of it. A no-op when it holds
   * nothing about it (the event may come to every node, more than once).
   */
  forgetLiveness(deviceId: number, key: string): void;
  /** The device's connections on this node. */
  ofDevice(deviceId: number): readonly L[];
  /** The user's connections on this node. */
  ofUser(userId: number): readonly L[];
  /** Whether link `key` is attached on this node. */
  isLocal(key: string): boolean;
}
