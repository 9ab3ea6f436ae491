import { isIPv6 } from 'node:net';

/**
 * The key that per-address limits count a client address under. An IPv4
 * address is its own key. An IPv6 address counts as its /64: a single home or
 * server is usually given a whole /64, so keying on the full address would
 * hand one client 2^64 separate allowances.
 */
export function addressKey(address: string): string {
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('%')[0]?.split('::') ?? [];
  const left = head ? head.split(':') : [];
  const right = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  // An embedded IPv4 tail (::ffff:1.2.3.4) takes two groups; only the first four groups matter here.
  const groups = address.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((group) => Number.parseInt(group, 16).toString(16))
    .join(':')}::/64`;
}
