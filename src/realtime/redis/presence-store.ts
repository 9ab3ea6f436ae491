import type { PresenceStore } from '../../services/live/presence-store.js';
import { nodeOfKey } from '../../services/live/nodes.js';
import { redisKeys } from './keys.js';
import { command, LuaScript, type RedisCommands } from './script.js';

/**
 * Removes the keys starting with ARGV[1] that node KEYS[1]'s index lists, from
 * the users' sets and the index; answers the users left with an empty set.
 * ARGV[2] is a user's set name without the user. One script: no node sees a
 * user half removed.
 */
const removeAll = new LuaScript(
  'presence removeAll',
  `local emptied = {}
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local colon = string.find(member, ':', 1, true)
  local user = string.sub(member, 1, colon - 1)
  local key = string.sub(member, colon + 1)
  if string.sub(key, 1, #ARGV[1]) == ARGV[1] then
    local set = ARGV[2] .. user
    redis.call('SREM', set, key)
    redis.call('SREM', KEYS[1], member)
    if redis.call('SCARD', set) == 0 then table.insert(emptied, user) end
  end
end
return emptied`,
);

/**
 * Who is connected, across nodes: a Redis set of connection keys per user
 * (`<prefix>presence:<user>`), and per node an index of what it added
 * (`<prefix>presence-of:<node>`, members `<user>:<key>`), so that removeAll
 * for a stopped or dead node reads one set instead of scanning every key.
 * The set and the index change together (MULTI). A call that cannot reach
 * Redis rejects with BusUnavailableError (the PresenceService treats presence
 * as best effort).
 */
export class RedisPresenceStore implements PresenceStore {
  /** `prefix`: the deployment's key prefix (`chatd:`). Connection keys must be `<node>:<rest>`. */
  constructor(
    private readonly redis: RedisCommands,
    private readonly prefix: string,
  ) {}

  async add(userId: number, key: string): Promise<number> {
    const set = redisKeys.presence(this.prefix, userId);
    const index = redisKeys.presenceOf(this.prefix, nodeOfKey(key));
    const replies = await command('presence add', () => this.redis.multi().sAdd(set, key).sAdd(index, `${userId}:${key}`).sCard(set).exec());
    return Number(replies.at(-1));
  }

  async remove(userId: number, key: string): Promise<number> {
    const set = redisKeys.presence(this.prefix, userId);
    const index = redisKeys.presenceOf(this.prefix, nodeOfKey(key));
    const replies = await command('presence remove', () => this.redis.multi().sRem(set, key).sRem(index, `${userId}:${key}`).sCard(set).exec());
    return Number(replies.at(-1));
  }

  async online(userIds: readonly number[]): Promise<Set<number>> {
    if (userIds.length === 0) return new Set();
    const exists = await command('presence online', () => {
      const pipeline = this.redis.multi();
      for (const userId of userIds) pipeline.exists(redisKeys.presence(this.prefix, userId));
      return pipeline.execAsPipeline();
    });
    return new Set(userIds.filter((_, at) => Number(exists[at]) > 0));
  }

  /** `prefix` must name its node (`<node>:`, or a longer prefix of that node's keys): the node's index is all that is read. */
  async removeAll(prefix: string): Promise<number[]> {
    if (!prefix.includes(':')) throw new Error(`removeAll needs a node's prefix, "<node>:": ${JSON.stringify(prefix)}`);
    const index = redisKeys.presenceOf(this.prefix, nodeOfKey(prefix));
    const emptied = await removeAll.run(this.redis, [index], [prefix, redisKeys.presence(this.prefix, '')]);
    return [...new Set((emptied as string[]).map(Number))];
  }
}
