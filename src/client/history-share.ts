import type { MessageJson, MessagesFrame, ThreadJson } from '../protocol/frames.js';
import type { Call } from './connection.js';
import { decodeSized } from './e2e-bytes.js';
import { decryptEnvelope, readEnvelope } from './envelope.js';
import { ClientError } from './errors.js';
import type { HistoryHost, HistoryModule } from './history-hook.js';
import {
  type HistoryEntry, type HistoryPart, type IncomingGrant, type OutgoingGrant, compareEntries, incomingKey, newGrantId, newestWithin,
  outgoingKey, packParts, parsePart, readIncoming, readOutgoing, withPart,
} from './history-parts.js';
import { type Sodium, loadSodium } from './sodium.js';

/** What the history module asks of the server (the client's request path: waits for a connection). */
export interface HistoryRequests {
  threads(): Promise<readonly ThreadJson[]>;
  /** A `history` page, raw (envelopes as stored). */
  page(threadId: number, anchor: { before: number } | { after: number }, limit: number): Promise<MessagesFrame>;
}

export interface HistoryProgress {
  readonly to_device: number;
  readonly grant_id: string;
  /** The part just sent (1-based). */
  readonly part: number;
  readonly parts: number;
}

export interface HistoryReceived {
  readonly from_device: number;
  readonly grant_id: string;
  readonly parts_received: number;
  readonly parts: number;
  /** Keys kept from this grant so far. */
  readonly messages: number;
  /** The threads this part had keys for: pages of them read again now open `ok` (`via: 'history'`). */
  readonly threads: readonly number[];
}

export interface HistoryShareOptions {
  readonly sodium: () => Promise<Sodium>;
  readonly requests: HistoryRequests;
  readonly progress: (progress: HistoryProgress) => void;
  readonly received: (received: HistoryReceived) => void;
  readonly error: (error: unknown) => void;
  /** At most this many keys per grant (the newest are kept). */
  readonly maxMessages: number;
  /** Each part's body JSON stays within this many bytes. */
  readonly partBytes: number;
}

export interface ShareResult {
  readonly grant_id: string;
  /** Keys in the grant. */
  readonly messages: number;
  /** Cut at `maxHistoryMessages`: the older keys were left out. */
  readonly truncated: boolean;
}

/** `history` pages are capped by the server at `history_page_max` (200 by default). */
const PAGE = 200;
/** Sends refused as `rate_limited` are tried again this many times, after the wait the server names. */
const RATE_RETRIES = 5;

/**
 * History for a new device (docs/e2e.md): sends another approved device of
 * this user the keys of the messages this one can open, in sealed and signed
 * parts, and keeps what such parts bring after checking each key against the
 * message the server stores. Progress both ways is kept in the store's
 * `grants`, so a grant cut short continues where it stopped.
 */
export class HistoryShare implements HistoryModule {
  private host: HistoryHost | undefined;
  /** Outgoing grants being sent now, by grant id: a second call joins the first. */
  private readonly running = new Map<string, Promise<ShareResult>>();

  constructor(private readonly options: HistoryShareOptions) {}

  /** The module of a client: over its request path, plugged into its encryption session; options as in ChatClientOptions. */
  static attachTo(
    session: { attachHistory(module: HistoryModule): HistoryHost },
    call: Call,
    events: Pick<HistoryShareOptions, 'progress' | 'received' | 'error'>,
    options: { readonly maxHistoryMessages?: number; readonly historyPartBytes?: number },
  ): HistoryShare {
    const share = new HistoryShare({
      ...events,
      sodium: loadSodium,
      requests: {
        threads: async () => (await call({ type: 'threads' })).threads,
        page: (threadId, anchor, limit) => call({ type: 'history', thread_id: threadId, ...anchor, limit }),
      },
      maxMessages: options.maxHistoryMessages ?? 100_000,
      // The server takes device messages of up to 44 KiB (sealed, with the signature around the body): 40 KiB of body at most.
      partBytes: Math.min(40_960, Math.max(256, options.historyPartBytes ?? 32_768)),
    });
    share.attach(session.attachHistory(share));
    return share;
  }

  attach(host: HistoryHost): void {
    this.host = host;
  }

  // ---- sending ----

  /**
   * Shares the keys of the chosen threads' messages (all threads when none
   * are given; from `since` on, ms epoch) with another approved device of
   * this user. An unfinished grant to the same device for the same choice is
   * continued rather than begun again.
   */
  async share(toDevice: number, choice: { threads?: readonly number[]; since?: number }): Promise<ShareResult> {
    const host = this.requireHost();
    if (!host.isApprovedOwnDevice(toDevice)) {
      throw new ClientError('not_found', `device ${toDevice} is not another approved device of this account: history goes only there (approve it first)`, false);
    }
    const since = choice.since ?? 0;
    if (!Number.isFinite(since) || since < 0) throw new ClientError('invalid_field', 'since must be a time in ms since the epoch', false);
    const wanted = choice.threads ? [...new Set(choice.threads)].sort((a, b) => a - b) : undefined;
    if (wanted?.some((id) => !Number.isSafeInteger(id) || id <= 0)) throw new ClientError('invalid_field', 'threads must be thread ids', false);
    const unfinished = this.outgoing().find((grant) => grant.state === 'sending' && grant.to_device === toDevice && grant.since === since
      && (wanted === undefined ? grant.all_threads : sameList(grant.threads, wanted)));
    if (unfinished) return this.continueGrant(unfinished);
    const threads = await this.options.requests.threads();
    const known = new Map(threads.map((thread) => [thread.id, thread]));
    const missing = wanted?.filter((id) => !known.has(id)) ?? [];
    if (missing.length > 0) throw new ClientError('not_found', `thread(s) ${missing.join(', ')} are not among this user's threads`, false);
    const chosen = wanted ?? [...known.keys()].sort((a, b) => a - b);
    const grant: OutgoingGrant = {
      direction: 'out', grant_id: newGrantId(), to_device: toDevice, threads: chosen, all_threads: wanted === undefined, since,
      until: Object.fromEntries(chosen.map((id) => [String(id), known.get(id)?.last_seq ?? 0])),
      next_part: 1, after: null, parts: 0, messages: 0, sent: 0, truncated: false, state: 'sending',
    };
    await this.save(grant);
    return this.continueGrant(grant);
  }

  /** Continues every unfinished outgoing grant (at connect); failures are reported, the grants stay for the next try. */
  async resume(): Promise<void> {
    for (const grant of this.outgoing()) {
      if (grant.state !== 'sending') continue;
      if (!this.requireHost().isApprovedOwnDevice(grant.to_device)) {
        await this.save({ ...grant, state: 'abandoned' });
        this.options.error(new ClientError('not_found', `history grant ${grant.grant_id} abandoned: device ${grant.to_device} is no longer an approved device of this account`, false));
        continue;
      }
      await this.continueGrant(grant).catch(this.options.error);
    }
  }

  private continueGrant(grant: OutgoingGrant): Promise<ShareResult> {
    const running = this.running.get(grant.grant_id);
    if (running) return running;
    const run = this.send(grant).finally(() => this.running.delete(grant.grant_id));
    this.running.set(grant.grant_id, run);
    return run;
  }

  private async send(start: OutgoingGrant): Promise<ShareResult> {
    const host = this.requireHost();
    const { entries, total, truncated } = await this.collect(start);
    const after = start.after;
    const left = after ? entries.filter((entry) => compareEntries(entry, after) > 0) : entries;
    const chunks = packParts(left, this.options.partBytes);
    let grant: OutgoingGrant = { ...start, parts: start.next_part - 1 + chunks.length, messages: total, truncated };
    await this.save(grant);
    for (const keys of chunks) {
      const part = grant.next_part;
      const body: HistoryPart = { grant_id: grant.grant_id, part, parts: grant.parts, keys };
      await this.sendPaced(host, grant.to_device, body);
      const last = keys[keys.length - 1] as HistoryEntry;
      grant = { ...grant, next_part: part + 1, after: [last[0], last[1]], sent: grant.sent + keys.length };
      await this.save(grant);
      this.options.progress({ to_device: grant.to_device, grant_id: grant.grant_id, part, parts: grant.parts });
    }
    await this.save({ ...grant, state: 'done' });
    if (truncated) {
      this.options.error(new ClientError('payload_too_large', `history grant ${grant.grant_id} stops at the newest ${total} messages (maxHistoryMessages); older ones were not shared`, false));
    }
    return { grant_id: grant.grant_id, messages: total, truncated };
  }

  private async sendPaced(host: HistoryHost, toDevice: number, body: HistoryPart): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await host.sendDeviceMessage(toDevice, body);
      } catch (error) {
        if (!(error instanceof ClientError) || error.code !== 'rate_limited' || attempt >= RATE_RETRIES) throw error;
        await new Promise((resolve) => setTimeout(resolve, error.retryAfterMs ?? 1000));
      }
    }
  }

  /**
   * The grant's keys in send order (thread, seq): every e2e message of its
   * threads up to `until`, from `since` on, that this device opens `ok`; the
   * newest `maxMessages` of them. The same store and server give the same
   * keys, which is what lets a resumed grant skip what it already sent.
   */
  private async collect(grant: OutgoingGrant): Promise<{ entries: HistoryEntry[]; total: number; truncated: boolean }> {
    const host = this.requireHost();
    const max = this.options.maxMessages;
    let candidates: Array<{ id: number; entry: HistoryEntry }> = [];
    let truncated = false;
    for (const threadId of grant.threads) {
      let before = (grant.until[String(threadId)] ?? 0) + 1;
      while (before > 1) {
        let page: MessagesFrame;
        try {
          page = await this.options.requests.page(threadId, { before }, PAGE);
        } catch (error) {
          // A thread the user left or lost since: nothing more of it to share.
          if (error instanceof ClientError && (error.code === 'not_found' || error.code === 'forbidden')) break;
          throw error;
        }
        // A reconnect while the page was fetched unsettles the keys for a moment: messageKey would miss what it reads.
        await host.ready();
        for (const message of page.messages) {
          // A page of another thread (a server widening the share beyond the user's choice) gives nothing.
          // `since` is the server's word (created_at): best effort, not a guarantee.
          if (message.thread_id !== threadId || message.kind !== 'e2e' || message.created_at < grant.since) continue;
          const key = host.messageKey(message);
          if (key) candidates.push({ id: message.id, entry: [message.thread_id, message.seq, key] });
        }
        if (candidates.length > 2 * max) {
          candidates = newestWithin(candidates, max);
          truncated = true;
        }
        const oldest = page.messages[0];
        if (!oldest || !page.has_more_before || oldest.created_at < grant.since) break;
        before = oldest.seq;
      }
    }
    if (candidates.length > max) {
      candidates = newestWithin(candidates, max);
      truncated = true;
    }
    const entries = candidates.map((candidate) => candidate.entry).sort(compareEntries);
    return { entries, total: entries.length, truncated };
  }

  // ---- receiving ----

  /**
   * A `history` part from another approved device of this user (the mailbox
   * checked seal, signature and sender). Malformed: refused whole. Each key
   * must open the message the server stores at its thread and seq (its
   * commitment checked, as for a key sealed to this device); the others are
   * refused and reported. Duplicates of a part already kept are ignored.
   */
  async receive(fromDevice: number, body: unknown): Promise<void> {
    const host = this.requireHost();
    let part: HistoryPart;
    try {
      part = parsePart(body);
    } catch (error) {
      this.options.error(new ClientError('bad_reply', `a history part from device ${fromDevice} was refused: ${(error as Error).message}`, false));
      return;
    }
    const key = incomingKey(fromDevice, part.grant_id);
    const previous = readIncoming(host.grants()[key]);
    if (previous?.received.includes(part.part)) return;
    const { good, bad } = await this.check(part.keys);
    if (bad.length > 0) {
      const named = bad.slice(0, 5).map(([thread, seq]) => `thread ${thread} seq ${seq}`).join(', ');
      this.options.error(new ClientError('bad_reply', `history part ${part.part} of grant ${part.grant_id} from device ${fromDevice}: ${bad.length} key(s) refused (they do not open the stored message: ${named}${bad.length > 5 ? ', …' : ''})`, false));
    }
    const room = Math.max(0, this.options.maxMessages - (previous?.messages ?? 0));
    const kept = good.slice(0, room);
    if (kept.length < good.length) this.options.error(new ClientError('payload_too_large', `history grant ${part.grant_id} from device ${fromDevice} goes past maxHistoryMessages: ${good.length - kept.length} key(s) not kept`, false));
    if (kept.length > 0) await host.addHistoryKeys(kept);
    const record: IncomingGrant = withPart(previous, fromDevice, part, kept.length);
    await host.setGrants({ ...host.grants(), [key]: { ...record } });
    this.options.received({
      from_device: fromDevice, grant_id: part.grant_id, parts_received: record.received.length, parts: record.parts, messages: record.messages,
      threads: [...new Set(kept.map(([thread]) => thread))].sort((a, b) => a - b),
    });
  }

  /** Fetches the messages the keys name (a page covers up to 200 seqs from the first uncovered one) and tries each key on its message. */
  private async check(keys: readonly HistoryEntry[]): Promise<{ good: HistoryEntry[]; bad: HistoryEntry[] }> {
    const sodium = await this.options.sodium();
    const good: HistoryEntry[] = [];
    const bad: HistoryEntry[] = [];
    const byThread = new Map<number, HistoryEntry[]>();
    for (const entry of keys) byThread.set(entry[0], [...(byThread.get(entry[0]) ?? []), entry]);
    for (const [threadId, entries] of byThread) {
      entries.sort(compareEntries);
      const stored = new Map<number, MessageJson>();
      let coveredUpTo = 0;
      let readable = true;
      for (const entry of entries) {
        const seq = entry[1];
        if (readable && seq > coveredUpTo) {
          try {
            const page = await this.options.requests.page(threadId, { after: seq - 1 }, PAGE);
            for (const message of page.messages) stored.set(message.seq, message);
            coveredUpTo = page.messages.length > 0 && page.has_more_after ? (page.messages[page.messages.length - 1] as MessageJson).seq : Number.MAX_SAFE_INTEGER;
          } catch (error) {
            // A thread this user may not read: none of its keys can be checked, so none is kept.
            if (!(error instanceof ClientError) || (error.code !== 'not_found' && error.code !== 'forbidden')) throw error;
            readable = false;
          }
        }
        const message = stored.get(seq);
        (message && opensWith(sodium, message, entry[2]) ? good : bad).push(entry);
      }
    }
    return { good, bad };
  }

  // ---- records ----

  private outgoing(): OutgoingGrant[] {
    return Object.values(this.requireHost().grants()).map(readOutgoing).filter((grant): grant is OutgoingGrant => grant !== undefined);
  }

  private save(grant: OutgoingGrant): Promise<void> {
    const host = this.requireHost();
    return host.setGrants({ ...host.grants(), [outgoingKey(grant.grant_id)]: { ...grant } });
  }

  private requireHost(): HistoryHost {
    if (!this.host) throw new ClientError('invalid_field', 'encryption is off: history needs `encryption`', false);
    return this.host;
  }
}

/** Whether K opens this stored e2e message: the key commitment (v2) and the ciphertext both check. */
export function opensWith(sodium: Sodium, message: MessageJson, keyB64: string): boolean {
  if (message.kind !== 'e2e') return false;
  const envelope = readEnvelope(message.body);
  const key = decodeSized(sodium, keyB64, 32);
  if (!envelope || !key) return false;
  const binding = { thread_id: message.thread_id, client_msg_id: message.client_msg_id, sender_user_id: message.sender_id };
  return typeof decryptEnvelope(sodium, envelope, binding, key) === 'object';
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}
