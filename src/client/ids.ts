/**
 * A new client_msg_id: a version-7 UUID (RFC 9562), 48 bits of Unix
 * milliseconds and then random bits. Ids made later sort later, so the
 * server's idempotency index (client_msg_id first, migration 0009) grows at
 * its end: a commit of many messages writes one or two of its pages instead
 * of one per sending device. `crypto.randomUUID` makes only version 4, and
 * exists only in secure contexts (not on a plain-http page);
 * `getRandomValues` works everywhere.
 */
export function newClientMsgId(now: number = Date.now()): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  let time = now;
  for (let i = 5; i >= 0; i--) {
    bytes[i] = time % 256;
    time = Math.floor(time / 256);
  }
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x70;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
