import { ResponseCutError } from '../../transport/types.js';
import type { BufferedFrame, ResumeBuffer } from './resume-buffer.js';
import { KEEPALIVE, OPENED, frameEvent, utf8 } from './sse.js';
import type { KeepaliveMember, StreamTurns, TurnMember } from './turns.js';

/** Where a stream session's frames go while a client is there to take them: one live response at a time. */
export interface Sink {
  /** Writes waiting frames, as many as the response takes now. */
  flush(): void;
  /** Bytes written into the response that the transport has not taken yet. */
  queued(): number;
  /** Ends the response: after the waiting frames and `closeText` when the session ended; at once when another response replaces it. */
  end(closeText?: string): void;
}

/** What a sink needs of its connection. */
export interface SinkOwner {
  readonly buffer: ResumeBuffer;
  /** The response went away (the client left) or was answered: the session carries on without it. */
  detach(sink: Sink): void;
  /** Frames left the buffer for the response: the session may send more (its inbox drain waits for this). */
  drained(): void;
}

export const EVENT_STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-store',
  // nginx buffers proxied responses unless told not to.
  'x-accel-buffering': 'no',
} as const;

/** How much a stream response holds before the session's frames wait in the buffer (and count as unwritten). */
const RESPONSE_QUEUE_BYTES = 64 * 1024;

/**
 * Stream mode: one open response; the frames a session sends in one event-loop turn written as one
 * chunk at the turn's end, as much as the transport reads (the web stream's backpressure); a
 * keepalive comment when nothing was written for a whole interval (one sweep for all responses).
 */
export class StreamSink implements Sink, TurnMember, KeepaliveMember {
  readonly body: ReadableStream<Uint8Array>;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private ended = false;
  private scheduled = false;
  private wroteSinceTick = true;

  constructor(
    private readonly owner: SinkOwner,
    private readonly turns: StreamTurns,
  ) {
    this.body = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.controller = controller;
          controller.enqueue(utf8(OPENED));
        },
        // The reader took some: what waits can go now, not at a turn's end.
        pull: () => this.writeWaiting(),
        cancel: () => this.gone(),
      },
      { highWaterMark: RESPONSE_QUEUE_BYTES, size: (chunk) => chunk.byteLength },
    );
    turns.keepAlive(this);
  }

  flush(): void {
    if (this.ended || this.scheduled) return;
    this.scheduled = true;
    this.turns.atEndOfTurn(this);
  }

  endOfTurn(): void {
    this.scheduled = false;
    this.writeWaiting();
  }

  tick(): void {
    if (!this.wroteSinceTick) this.write(KEEPALIVE);
    this.wroteSinceTick = false;
  }

  queued(): number {
    if (this.ended) return 0;
    return Math.max(0, RESPONSE_QUEUE_BYTES - (this.controller?.desiredSize ?? RESPONSE_QUEUE_BYTES));
  }

  end(closeText?: string): void {
    if (this.ended) return;
    if (closeText !== undefined) {
      // The last frames (an error frame before the close) must reach the client, past the queue's mark.
      let text = '';
      for (let frame = this.owner.buffer.takeNext(); frame; frame = this.owner.buffer.takeNext()) text += frameEvent(frame.id, frame.text);
      this.write(text + closeText);
      this.stop();
      this.controller?.close();
      return;
    }
    // Replaced by a newer response (or the session was lost): cut, so that what this one still holds
    // in the transport and the kernel goes with its socket. A client that opened several resumes and
    // reads none of them would otherwise pin a copy of the buffer in each.
    this.stop();
    this.controller?.error(new ResponseCutError());
  }

  /** The waiting frames, as many as the response's queue has room for, in one chunk. */
  private writeWaiting(): void {
    if (this.ended) return;
    let room = this.controller?.desiredSize ?? 0;
    let text = '';
    while (room > 0) {
      const frame = this.owner.buffer.takeNext();
      if (!frame) break;
      text += frameEvent(frame.id, frame.text);
      room -= frame.bytes;
    }
    if (text === '') return;
    this.write(text);
    this.owner.drained();
  }

  private write(text: string): void {
    this.wroteSinceTick = true;
    this.controller?.enqueue(utf8(text));
  }

  private gone(): void {
    if (this.ended) return;
    this.stop();
    this.owner.detach(this);
  }

  private stop(): void {
    this.ended = true;
    this.turns.release(this);
  }
}

/**
 * Poll mode: one waiting request, answered with the waiting frames as soon as there are any (the
 * frames of one turn together, up to what the resume buffer keeps), or empty after the poll timeout, or empty when a newer poll takes
 * its place. The answer is an event stream that ends once answered: its headers leave at once, and
 * a client that leaves before the answer cancels it, so no frame is handed to a response nobody reads.
 */
export class PollSink implements Sink {
  readonly response: Promise<Response>;
  private controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  private answered = false;
  private scheduled = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly owner: SinkOwner,
    timeoutMs: number,
    headers: Record<string, string>,
  ) {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.controller = controller;
        controller.enqueue(utf8(OPENED));
      },
      cancel: () => {
        if (this.answered) return;
        this.answered = true;
        clearTimeout(this.timer);
        this.owner.detach(this);
      },
    });
    this.response = Promise.resolve(new Response(body, { status: 200, headers }));
    this.timer = setTimeout(() => this.answer(), timeoutMs);
    this.timer.unref();
  }

  flush(): void {
    if (this.answered || this.scheduled || this.owner.buffer.unwrittenBytes === 0) return;
    // A frame rarely comes alone (an ack and its fanout, the welcome and the inbox): answer at the end of this turn.
    this.scheduled = true;
    setImmediate(() => this.answer());
  }

  queued(): number {
    return 0;
  }

  end(closeText?: string): void {
    this.answer(closeText ?? '', closeText === undefined);
  }

  private answer(closeText = '', empty = false): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.timer);
    let body = '';
    let took = false;
    if (!empty) {
      // The last answer carries every frame before the close event; any other only as many as the
      // buffer keeps, so that a lost answer can be polled for again (the client polls at once for the rest).
      const frames = closeText === '' ? this.owner.buffer.takeBatch(RESPONSE_QUEUE_BYTES) : this.takeAll();
      for (const frame of frames) body += frameEvent(frame.id, frame.text);
      took = frames.length > 0;
    }
    body += closeText;
    this.owner.detach(this);
    if (body !== '') this.controller?.enqueue(utf8(body));
    this.controller?.close();
    if (took) this.owner.drained();
  }

  private takeAll(): BufferedFrame[] {
    const frames: BufferedFrame[] = [];
    for (let frame = this.owner.buffer.takeNext(); frame; frame = this.owner.buffer.takeNext()) frames.push(frame);
    return frames;
  }
}
