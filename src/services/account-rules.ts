import { ChatError } from '../errors.js';

/** What a username, display name, device and password must look like; shared by HTTP and the admin CLI. */

export const PLATFORMS = ['ios', 'android', 'web', 'desktop', 'cli', 'bot', 'other'] as const;
export type Platform = (typeof PLATFORMS)[number];

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._-]{2,31}$/;
/** Longer passwords are refused before hashing: argon2 of a megabyte is a cheap way to burn our CPU. */
export const PASSWORD_MAX_LENGTH = 1024;

function invalid(field: string, message: string): ChatError {
  return new ChatError('invalid_field', `${field} ${message}`, { field });
}

/** 3-32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit. Compared without case. */
export function checkUsername(username: string, field = 'username'): void {
  if (!USERNAME.test(username)) {
    throw invalid(field, "must be 3-32 characters: letters, digits, '.', '_' or '-', starting with a letter or digit");
  }
}

export function checkDisplayName(name: string, field = 'display_name'): void {
  const length = [...name.trim()].length;
  if (length < 1 || length > 64) throw invalid(field, 'must be 1-64 characters');
  // A line break or a control character in a name would break every list and header that shows it.
  if (/\p{Cc}/u.test(name)) throw invalid(field, 'must not contain line breaks or control characters');
}

export function checkDeviceName(name: string, field = 'device_name'): void {
  const length = [...name.trim()].length;
  if (length < 1 || length > 64) throw invalid(field, 'must be 1-64 characters');
}

export function checkPlatform(platform: string, field = 'platform'): asserts platform is Platform {
  if (!(PLATFORMS as readonly string[]).includes(platform)) throw invalid(field, `must be one of ${PLATFORMS.join(', ')}`);
}

export function checkPassword(password: string, minLength: number, field = 'password'): void {
  const length = [...password].length;
  if (length < minLength) throw invalid(field, `must be at least ${minLength} characters`);
  if (length > PASSWORD_MAX_LENGTH) throw invalid(field, `must be at most ${PASSWORD_MAX_LENGTH} characters`);
}
