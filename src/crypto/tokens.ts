import { createHash, randomBytes } from 'node:crypto';

/** A new bearer token: 256 random bits, base64url (43 characters). Shown to its owner once. */
export function newToken(): string {
  return randomBytes(32).toString('base64url');
}

/** What the database keeps instead of the token: a stolen database yields no usable token. */
export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** An invite code: 16 characters from a 31-letter alphabet without look-alikes (about 79 bits). */
export function newInviteCode(): string {
  const alphabet = 'abcdefghjkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(16);
  let code = '';
  for (const byte of bytes) code += alphabet[byte % alphabet.length];
  return `${code.slice(0, 4)}-${code.slice(4, 8)}-${code.slice(8, 12)}-${code.slice(12, 16)}`;
}

/** What the database keeps of an invite code. Codes are compared without case and surrounding spaces, as people retype them. */
export function hashInviteCode(code: string): Buffer {
  return hashToken(code.trim().toLowerCase());
}

/** The code's first four letters: shown in lists to tell invites apart (about 20 of its 79 bits). */
export function inviteCodePrefix(code: string): string {
  return code.trim().toLowerCase().slice(0, 4);
}
