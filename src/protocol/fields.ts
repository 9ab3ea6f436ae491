import { ChatError } from '../errors.js';

/**
 * Field readers for request bodies and frames. Pure; each failure is a
 * ChatError 'invalid_field' that names the field and says what is allowed.
 */

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

interface StringRule {
  readonly min?: number;
  readonly max: number;
  readonly pattern?: RegExp;
  /** Said after "must be" when the pattern fails, e.g. "3-32 letters, digits, '.', '_' or '-'". */
  readonly patternText?: string;
}

function invalid(field: string, message: string): ChatError {
  return new ChatError('invalid_field', `${field} ${message}`, { field });
}

export function readString(body: JsonObject, field: string, rule: StringRule): string {
  const value = body[field];
  if (value === undefined || value === null) throw invalid(field, 'is required');
  if (typeof value !== 'string') throw invalid(field, `must be a string, got ${describe(value)}`);
  const length = [...value].length;
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

/** A path or body id: a positive safe integer. */
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
