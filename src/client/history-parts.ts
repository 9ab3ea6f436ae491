/**
 * History for a new device (docs/e2e.md, "History for a new device"): the
 * pure half. What a `history` device message carries (the shared spec,
 * section 3), how message keys are packed into parts that stay under a byte
 * budget, how a received part is checked before anything of it is kept, and
 * the progress records kept in the store's `grants`.
 */

/** One shared message key: `[thread_id, seq, K as base64]`. */
export type HistoryEntry = readonly [number, number, string];

/** The body of a `history` device message. */
export interface HistoryPart {
  readonly grant_id: string;
  /** 1-based. */
  readonly part: number;
  /** The sender's count of parts in the grant (its latest word: a resumed grant may restate it). */
  readonly parts: number;
  readonly keys: readonly HistoryEntry[];
}

/** Grant ids: what `newGrantId` makes (22 characters), within bounds for anything another client may make. */
const GRANT_ID = /^[A-Za-z0-9_-]{8,64}$/;
/** Standard padded base64 of 32 bytes. */
const KEY_B64 = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;
/** No grant of up to a few million keys needs more parts than this. */
export const MAX_PARTS = 100_000;
/** A part of the largest device message the server takes (45056 bytes) holds fewer keys than this. */
export const MAX_KEYS_PER_PART = 1_000;
/** Room for the body's fields around its keys (`{"grant_id":…,"part":…,"parts":…,"keys":[]}`, ids up to 64 characters, numbers up to 7 digits). */
const BODY_OVERHEAD = 128;

/** A fresh grant id: 16 random bytes, base64url. */
export function newGrantId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;

/**
 * Splits keys (in the order given) into parts whose body's JSON stays within
 * `partBytes`, greedily: the same keys always give the same parts, so a
 * resumed grant packs what is left exactly as the first run would have.
 */
export function packParts(keys: readonly HistoryEntry[], partBytes: number): HistoryEntry[][] {
  const budget = partBytes - BODY_OVERHEAD;
  if (budget < 64) throw new RangeError(`a history part of ${partBytes} bytes cannot hold a key`);
  const parts: HistoryEntry[][] = [];
  let current: HistoryEntry[] = [];
  let used = 0;
  for (const entry of keys) {
    const size = JSON.stringify(entry).length + 1; // and its comma
    if (current.length > 0 && (used + size > budget || current.length >= MAX_KEYS_PER_PART)) {
      parts.push(current);
      current = [];
      used = 0;
    }
    current.push(entry);
    used += size;
  }
  if (current.length > 0) parts.push(current);
  return parts;
}

/** Orders keys by thread, then seq: the order parts are sent in, and what a resume cursor compares against. */
export function compareEntries(a: readonly [number, number, ...unknown[]], b: readonly [number, number, ...unknown[]]): number {
  return a[0] - b[0] || a[1] - b[1];
}

/**
 * A received `history` body, checked field by field; throws with the reason
 * for anything malformed (nothing of it is then kept).
 */
export function parsePart(body: unknown): HistoryPart {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error('the body is not an object');
  const { grant_id: grantId, part, parts, keys } = body as Record<string, unknown>;
  if (typeof grantId !== 'string' || !GRANT_ID.test(grantId)) throw new Error('grant_id must be 8 to 64 characters of A-Z a-z 0-9 _ -');
  if (!isId(parts) || parts > MAX_PARTS) throw new Error(`parts must be an integer from 1 to ${MAX_PARTS}`);
  if (!isId(part) || part > parts) throw new Error('part must be an integer from 1 to parts');
  if (!Array.isArray(keys) || keys.length > MAX_KEYS_PER_PART) throw new Error(`keys must be a list of at most ${MAX_KEYS_PER_PART} entries`);
  const entries: HistoryEntry[] = [];
  for (const [index, entry] of (keys as unknown[]).entries()) {
    if (!Array.isArray(entry) || entry.length !== 3 || !isId(entry[0]) || !isId(entry[1]) || typeof entry[2] !== 'string' || !KEY_B64.test(entry[2])) {
      throw new Error(`keys[${index}] is not [thread_id, seq, base64 of 32 bytes]`);
    }
    entries.push([entry[0], entry[1], entry[2]]);
  }
  return { grant_id: grantId, part, parts, keys: entries };
}

// ---- progress records (the store's `grants`, keyed by `grantKey`) ----

/** What this device is sending: enough to continue the same grant after a restart. */
export interface OutgoingGrant {
  readonly direction: 'out';
  readonly grant_id: string;
  readonly to_device: number;
  /** The threads chosen (all of the user's when the grant began, if none were given: `all_threads`), ascending. */
  readonly threads: readonly number[];
  readonly all_threads: boolean;
  /** Messages from this time on (ms epoch); 0: all. */
  readonly since: number;
  /** Per thread, its last seq when the grant began: later messages were sealed to the new device anyway. */
  readonly until: Readonly<Record<string, number>>;
  /** The next part to send (1-based) and the key it starts after (`[thread_id, seq]`, null before the first). */
  readonly next_part: number;
  readonly after: readonly [number, number] | null;
  /** Parts in all (0 until counted), keys in all, keys sent. */
  readonly parts: number;
  readonly messages: number;
  readonly sent: number;
  /** The grant was cut at `maxHistoryMessages` (the newest kept). */
  readonly truncated: boolean;
  readonly state: 'sending' | 'done' | 'abandoned';
}

/** What this device got of another's grant. */
export interface IncomingGrant {
  readonly direction: 'in';
  readonly grant_id: string;
  readonly from_device: number;
  readonly parts: number;
  /** Part numbers received, ascending. */
  readonly received: readonly number[];
  /** Keys kept so far. */
  readonly messages: number;
}

export function outgoingKey(grantId: string): string {
  return `out:${grantId}`;
}

/** Grant ids are the sender's: another device could reuse one, so incoming records are per sender. */
export function incomingKey(fromDevice: number, grantId: string): string {
  return `in:${fromDevice}:${grantId}`;
}

const isEntryPair = (value: unknown): value is [number, number] => Array.isArray(value) && value.length === 2 && isId(value[0]) && isId(value[1]);

/** A stored outgoing record, or undefined when it is not one (or malformed: then it is ignored, never half-used). */
export function readOutgoing(record: Readonly<Record<string, unknown>> | undefined): OutgoingGrant | undefined {
  const r = record as Partial<Record<keyof OutgoingGrant, unknown>> | undefined;
  if (!r || r.direction !== 'out' || typeof r.grant_id !== 'string' || !isId(r.to_device)) return undefined;
  if (!Array.isArray(r.threads) || !r.threads.every(isId) || typeof r.all_threads !== 'boolean' || typeof r.since !== 'number' || typeof r.until !== 'object' || r.until === null) return undefined;
  if (!Object.values(r.until).every((seq) => Number.isSafeInteger(seq) && (seq as number) >= 0)) return undefined;
  if (!isId(r.next_part) || (r.after !== null && !isEntryPair(r.after))) return undefined;
  if (![r.parts, r.messages, r.sent].every((n) => Number.isSafeInteger(n) && (n as number) >= 0) || typeof r.truncated !== 'boolean') return undefined;
  if (r.state !== 'sending' && r.state !== 'done' && r.state !== 'abandoned') return undefined;
  return r as unknown as OutgoingGrant;
}

export function readIncoming(record: Readonly<Record<string, unknown>> | undefined): IncomingGrant | undefined {
  const r = record as Partial<Record<keyof IncomingGrant, unknown>> | undefined;
  if (!r || r.direction !== 'in' || typeof r.grant_id !== 'string' || !isId(r.from_device) || !isId(r.parts)) return undefined;
  if (!Array.isArray(r.received) || !r.received.every(isId) || !Number.isSafeInteger(r.messages)) return undefined;
  return r as unknown as IncomingGrant;
}

/** The incoming record after one more part (its keys counted once they are kept). */
export function withPart(previous: IncomingGrant | undefined, fromDevice: number, part: HistoryPart, kept: number): IncomingGrant {
  const received = [...new Set([...(previous?.received ?? []), part.part])].sort((a, b) => a - b);
  return { direction: 'in', grant_id: part.grant_id, from_device: fromDevice, parts: part.parts, received, messages: (previous?.messages ?? 0) + kept };
}

/**
 * Keeps the newest `max` of candidate keys (by message id, which grows with
 * time across threads), returned in send order. Used to bound a grant.
 */
export function newestWithin<T extends { readonly id: number; readonly entry: HistoryEntry }>(candidates: readonly T[], max: number): T[] {
  return [...candidates].sort((a, b) => b.id - a.id).slice(0, max);
}
