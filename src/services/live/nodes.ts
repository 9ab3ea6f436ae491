/**
 * The nodes of a deployment, as each sees the others: every node heartbeats,
 * and a node whose heartbeat lapsed (its process died, or it lost the bus) is
 * dead. A surviving node cleans up after it: the connection keys it held in
 * the PresenceStore (`removeAll("<node>:")`), and the device liveness it held
 * (listed here; each device is released by detaching a link with that key,
 * compare-and-delete, and handed over as any closed link), then forgets it.
 * Every step is safe to run twice or by two survivors at once.
 *
 * Keys of connections and links are `<node>:<rest>`: a key's node is what
 * precedes its first colon (nodeOfKey).
 */
export interface NodeDirectory {
  /**
   * This node is alive for another TTL (the implementation's option; a
   * caller heartbeats several times per TTL). The first heartbeat registers the
   * node and resolves true; a later one resolves false when the directory had
   * forgotten the node meanwhile (another node declared it dead and may have
   * swept its presence and liveness, or the bus lost its data): the node is
   * registered again, and should close its connections so that they come back
   * whole.
   */
  heartbeat(): Promise<boolean>;
  /** The nodes whose heartbeat lapsed and that nobody forgot yet; never this node. */
  deadNodes(): Promise<string[]>;
  /** The device liveness `node`'s links hold now. */
  liveDevicesOf(node: string): Promise<HeldLiveness[]>;
  /** Drops `node` from the directory (once its presence and liveness are cleaned up). Idempotent. */
  forget(node: string): Promise<void>;
}

/** A device whose liveness a node's link holds. */
export interface HeldLiveness {
  readonly deviceId: number;
  /** The live link's key, to release it with compare-and-delete. */
  readonly key: string;
}

/** The node of a connection or link key (`<node>:<counter>`): what precedes the first colon, the whole key without one. */
export function nodeOfKey(key: string): string {
  const colon = key.indexOf(':');
  return colon < 0 ? key : key.slice(0, colon);
}
