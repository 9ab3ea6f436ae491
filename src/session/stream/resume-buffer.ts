/**
 * The frames of one stream session, numbered 1, 2, 3… as the session sends them. A frame is
 * "unwritten" until it has been handed to a live response (stream mode) or fetched (poll mode);
 * unwritten frames are never dropped (the session's slow-consumer rule bounds them, through
 * unwrittenBytes). Written frames are kept for a resume, the newest `maxFrames` of them and at most
 * `maxBytes` in all, so that a client whose stream was cut can ask again from its Last-Event-ID.
 */

export interface BufferedFrame {
  readonly id: number;
  readonly text: string;
  readonly bytes: number;
}

export type ResumePoint =
  | { readonly ok: true }
  /** The client claims a frame that was never sent. */
  | { readonly ok: false; readonly problem: 'future'; readonly lastId: number }
  /** Frames after the client's id were dropped: it cannot resume without loss. */
  | { readonly ok: false; readonly problem: 'gone'; readonly oldestId: number };

export class ResumeBuffer {
  private readonly frames: BufferedFrame[] = [];
  private lastId = 0;
  /** Frames with an id up to this one have been written; the rest wait for a response. */
  private writtenId = 0;
  private writtenBytesKept = 0;
  private unwritten = 0;

  constructor(
    private readonly maxFrames: number,
    private readonly maxBytes: number,
  ) {}

  /** Numbers and keeps a frame; returns its id. */
  push(text: string): number {
    const bytes = Buffer.byteLength(text);
    this.frames.push({ id: ++this.lastId, text, bytes });
    this.unwritten += bytes;
    return this.lastId;
  }

  get last(): number {
    return this.lastId;
  }

  /** Bytes of frames sent and not yet written to a response. */
  get unwrittenBytes(): number {
    return this.unwritten;
  }

  /** Whether a client that has every frame up to `afterId` can be given the rest. Changes nothing. */
  check(afterId: number): ResumePoint {
    if (!Number.isSafeInteger(afterId) || afterId > this.lastId) return { ok: false, problem: 'future', lastId: this.lastId };
    const oldest = this.frames[0]?.id ?? this.lastId + 1;
    if (afterId + 1 < oldest) return { ok: false, problem: 'gone', oldestId: oldest };
    return { ok: true };
  }

  /**
   * The client has every frame up to `afterId` (checked first): the frames after it count as
   * unwritten again, to be written to the next response. `acknowledged` drops the frames up to it (poll
   * mode: the client says it has them).
   */
  rewind(afterId: number, acknowledged: boolean): void {
    if (acknowledged) while (this.frames.length > 0 && (this.frames[0] as BufferedFrame).id <= afterId) this.frames.shift();
    this.writtenId = afterId;
    this.writtenBytesKept = 0;
    this.unwritten = 0;
    for (const frame of this.frames) {
      if (frame.id <= afterId) this.writtenBytesKept += frame.bytes;
      else this.unwritten += frame.bytes;
    }
    this.trim();
  }

  /** The next unwritten frame, marked written (and the oldest written ones dropped past the bounds); undefined when none waits. */
  takeNext(): BufferedFrame | undefined {
    // Ids are consecutive from the oldest kept one.
    const first = this.frames[0]?.id ?? this.lastId + 1;
    const frame = this.frames[this.writtenId + 1 - first];
    if (!frame) return undefined;
    this.writtenId = frame.id;
    this.unwritten -= frame.bytes;
    this.writtenBytesKept += frame.bytes;
    this.trim();
    return frame;
  }

  /**
   * The unwritten frames one poll answer carries, marked written: at most `maxFrames` of them and
   * `maxBytes` in all (one frame at least), so that every frame of an answer stays kept once written
   * and an answer that is lost can be asked for again whole. The rest wait for the next answer.
   */
  takeBatch(maxBytes = this.maxBytes): BufferedFrame[] {
    const batch: BufferedFrame[] = [];
    const limit = Math.min(maxBytes, this.maxBytes);
    let bytes = 0;
    while (batch.length < this.maxFrames) {
      const first = this.frames[0]?.id ?? this.lastId + 1;
      const next = this.frames[this.writtenId + 1 - first];
      if (!next || (batch.length > 0 && bytes + next.bytes > limit)) break;
      bytes += next.bytes;
      batch.push(this.takeNext() as BufferedFrame);
    }
    return batch;
  }

  private trim(): void {
    while (this.frames.length > 0) {
      const oldest = this.frames[0] as BufferedFrame;
      if (oldest.id > this.writtenId) return;
      const written = this.writtenId - oldest.id + 1;
      if (written <= this.maxFrames && this.writtenBytesKept <= this.maxBytes) return;
      this.frames.shift();
      this.writtenBytesKept -= oldest.bytes;
    }
  }
}
