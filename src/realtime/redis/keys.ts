/**
 * Every Redis key the live seams use, in one place (the node directory reads
 * what the device links and the presence store write). All start with the
 * deployment's prefix (`chatd:` by default), so two deployments can share a Redis.
 *
 * Connection and link keys are `<node>:<rest>`: the per-node indexes are found
 * by what precedes the first colon (see nodeOfKey), never by scanning keys.
 * Some scripts name keys they compute (the index of a liveness's previous
 * owner, the sets of a dead node's users): a single Redis (or Sentinel) is
 * fine, Redis Cluster is not supported.
 */
export const redisKeys = {
  /** String: the key of the device's live link. */
  live: (prefix: string, deviceId: number | string) => `${prefix}live:${deviceId}`,
  /** Hash device → link key: the liveness a node holds (kept with `live` in the same scripts). */
  liveOf: (prefix: string, node: string) => `${prefix}live-of:${node}`,
  /** Set: a user's connection keys, on every node. */
  presence: (prefix: string, userId: number | string) => `${prefix}presence:${userId}`,
  /** Set of `<user>:<key>`: what a node added to the presence sets (so removeAll scans no keyspace). */
  presenceOf: (prefix: string, node: string) => `${prefix}presence-of:${node}`,
  /** Set: the nodes known to the directory. */
  nodes: (prefix: string) => `${prefix}nodes`,
  /** String with a TTL: present while the node's heartbeat is fresh. */
  alive: (prefix: string, node: string) => `${prefix}alive:${node}`,
};
