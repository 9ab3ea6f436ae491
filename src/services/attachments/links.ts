import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Signed attachment links: what a browser puts in <img src>, <audio> and
 * <video>, which cannot send an Authorization header, so the device token
 * never goes in a URL. A link names one attachment, one variant and an expiry
 * (Unix seconds), signed with HMAC-SHA256 under a secret every node shares
 * (server_secrets 'attachment_links', 32 random bytes made by the first node
 * that asks). Whoever holds an unexpired link may read that variant: it
 * carries no user, which is why links are short-lived (link_ttl_seconds).
 */

export type LinkVariant = 'file' | 'thumbnail';

export type LinkCheck = 'valid' | 'expired' | 'invalid';

export const LINK_SECRET_NAME = 'attachment_links';

export function makeLinkSecret(): Uint8Array {
  return randomBytes(32);
}

/** base64url HMAC-SHA256 over `${id}:${variant}:${exp}`. */
export function signLink(secret: Uint8Array, id: string, variant: LinkVariant, exp: number): string {
  return createHmac('sha256', secret).update(`${id}:${variant}:${exp}`).digest('base64url');
}

/**
 * Checks a link's `exp` and `sig` query values as they came (null when
 * absent). The signature first, compared in constant time: a forged or edited
 * link is 'invalid' whatever its time says; a genuine one past `nowSeconds`
 * is 'expired'.
 */
export function checkLink(
  secret: Uint8Array,
  id: string,
  variant: LinkVariant,
  exp: string | null,
  sig: string | null,
  nowSeconds: number,
): LinkCheck {
  if (exp === null || sig === null || !/^[1-9][0-9]{0,11}$/.test(exp) || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return 'invalid';
  const expected = Buffer.from(signLink(secret, id, variant, Number(exp)), 'base64url');
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'invalid';
  return Number(exp) <= nowSeconds ? 'expired' : 'valid';
}
