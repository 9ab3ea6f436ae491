import { ChatError } from '../errors.js';

/**
 * The one library of field readers, for WebSocket frames (decode.ts) and HTTP
 * bodies (transport/http). Pure; each failure is a ChatError 'invalid_field'
 * that names the field and says what is allowed.
 *
 * One length rule everywhere: a string's length is its number of Unicode code
 * points (`[...text].length`), the rule the services apply too (e.g.
 * services/thread-rules.ts checkTitle), so that the decoder never refuses what a
 * service would accept: a title of 60 emoji is 60 characters, not 120.
 *
 * The two wordings (frames say "must be a string of 1-N characters", HTTP says
 * "is required" / "must be at most N characters") are both part of the frozen
 * wire and kept as they are; only the counting is shared.
 */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The length of `text` as every limit of the protocol counts it: Unicode code points. */
export function codePointLength(text: string): number {
  let length = 0;
  for (const _ of text) length++;
  return length;
}

/** A string of 1-max code points: what every string limit of docs/protocol.md means. */
export function isTextOfLength(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && (value.length <= max || codePointLength(value) <= max);
}

function invalid(field: string, message: string): ChatError {
  return new ChatError('invalid_field', `${field} ${message}`, { field });
}

/** Throws 'invalid_field' for `field` with `message` (said after the field's name). */
export function fail(field: string, message: string): never {
  throw invalid(field, message);
}

// ---- frame readers (decode.ts): a missing field reads as undefined ----

/**
 * An optional field left out, or given as null: the same to the server. Many
 * JSON encoders write an unset optional as null (Swift's, Kotlin's, Go's
 * pointers). The one field where null says something is thread_settings' label.
 */
export function isAbsent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

/** A required string of 1-max code points. */
export function requireString(frame: JsonObject, field: string, max: number): string {
  const value = frame[field];
  if (!isTextOfLength(value, max)) fail(field, `must be a string of 1-${max} characters`);
  return value;
}

/** Absent or null reads as undefined; otherwise as requireString. */
export function optionalString(frame: JsonObject, field: string, max: number): string | undefined {
  return isAbsent(frame[field]) ? undefined : requireString(frame, field, max);
}

/** A positive integer id. */
export function requireId(frame: JsonObject, field: string): number {
  const value = frame[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) fail(field, 'must be a positive integer');
  return value;
}

/** A seq: an integer from 0. */
export function requireSeq(frame: JsonObject, field: string): number {
  const value = frame[field];
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) fail(field, 'must be an integer of 0 or more');
  return value;
}

/** Absent or null reads as undefined. */
export function optionalBoolean(frame: JsonObject, field: string): boolean | undefined {
  const value = frame[field];
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'boolean') fail(field, 'must be true or false');
  return value;
}

/** Absent or null reads as undefined. */
export function optionalEnum<V extends string>(frame: JsonObject, field: string, values: readonly V[]): V | undefined {
  const value = frame[field];
  if (isAbsent(value)) return undefined;
  if (typeof value !== 'string' || !values.includes(value as V)) fail(field, `must be one of ${values.join(', ')}`);
  return value as V;
}

/** A list of at most `max` positive integers. */
export function requireIdList(frame: JsonObject, field: string, max: number): number[] {
  const value = frame[field];
  if (!Array.isArray(value) || value.length > max) fail(field, `must be a list of at most ${max} user ids`);
  return value.map((item) => {
    if (typeof item !== 'number' || !Number.isSafeInteger(item) || item < 1) fail(field, 'must hold positive integers');
    return item;
  });
}

// ---- body readers (HTTP): absent and null both read as missing ----

interface StringRule {
  readonly min?: number;
  readonly max: number;
  readonly pattern?: RegExp;
  /** Said after "must be" when the pattern fails, e.g. "3-32 letters, digits, '.', '_' or '-'". */
  readonly patternText?: string;
}

export function readString(body: JsonObject, field: string, rule: StringRule): string {
  const value = body[field];
  if (value === undefined || value === null) throw invalid(field, 'is required');
  if (typeof value !== 'string') throw invalid(field, `must be a string, got ${describe(value)}`);
  const length = codePointLength(value);
  if (length < (rule.min ?? 1)) throw invalid(field, `must be at least ${rule.min ?? 1} characters`);
  if (length > rule.max) throw invalid(field, `must be at most ${rule.max} characters`);
  if (rule.pattern && !rule.pattern.test(value)) throw invalid(field, `must be ${rule.patternText ?? `like ${rule.pattern}`}`);
  return value;
}

export function readOptionalString(body: JsonObject, field: string, rule: StringRule): string | undefined {
  return body[field] === undefined || body[field] === null ? undefined : readString(body, field, rule);
}

export function readEnum<V extends string>(body: JsonObject, field: string, values: readonly V[]): V {
  const value = body[field];
  if (value === undefined || value === null) throw invalid(field, `is required (one of ${values.join(', ')})`);
  if (typeof value !== 'string' || !values.includes(value as V)) {
    throw invalid(field, `must be one of ${values.join(', ')}, got ${describe(value)}`);
  }
  return value as V;
}

export function readOptionalBoolean(body: JsonObject, field: string): boolean | undefined {
  const value = body[field];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'boolean') throw invalid(field, `must be true or false, got ${describe(value)}`);
  return value;
}

/** A path or body id: a positive safe integer, also given as decimal text (path segments are text). */
export function parseId(raw: unknown, field: string): number {
  const value = typeof raw === 'string' && /^\d{1,15}$/.test(raw) ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) throw invalid(field, 'must be a positive integer');
  return value;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
