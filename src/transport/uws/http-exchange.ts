import { STATUS_CODES } from 'node:http';
import type { HttpRequest, HttpResponse } from 'uWebSockets.js';
import { checkHead, toRequest } from '../http/incoming.js';
import { bodyTooLarge, internalError } from '../http/respond.js';
import { REQUEST_QUEUE_BYTES, RequestAbortedError, isEventStream, streamedLength } from '../streaming.js';
import { ResponseCutError, type TransportOptions } from '../types.js';

/*
 * One HTTP request on uWS, from its head to the last byte of the answer: the
 * body handed to the handler as a stream with backpressure, the Response
 * written as its stream yields. The WebSocket side is server.ts.
 */

const decoder = new TextDecoder();

/**
 * Reads a request (synchronously, as uWS requires), runs the handler, writes the Response unless the client left.
 * Nothing that a request carries or a handler throws escapes: uWS would end the process.
 */
export function serveHttp(res: HttpResponse, req: HttpRequest, options: TransportOptions): void {
  const state: Exchange = { aborted: false, answered: false, finished: false, bodyDone: false, onAbort: [], onAnswer: [] };
  res.onAborted(() => {
    state.aborted = true;
    for (const react of state.onAbort) react();
  });
  const method = req.getCaseSensitiveMethod().toUpperCase();
  const write = (response: Response): void => respond(res, state, response, method, options);

  try {
    const query = req.getQuery();
    const headers: Array<[string, string]> = [];
    req.forEach((key, value) => headers.push([key, value]));
    const head = { method, target: `${req.getUrl()}${query ? `?${query}` : ''}`, headers };
    const context = { remoteAddress: remoteAddress(res) };
    const run = (body: Buffer | ReadableStream<Uint8Array> | undefined): void => {
      const incoming = toRequest(head, body);
      if (!incoming.ok) {
        write(incoming.response);
        return;
      }
      // A handler that throws before its first await throws here, not in a promise.
      new Promise<Response>((resolve) => resolve(options.http(incoming.request, context)))
        .then(write)
        .catch((error: unknown) => {
          options.onError(error, `${method} ${head.target}`);
          write(internalError());
        });
    };

    const refused = checkHead(head);
    if (refused) {
      write(refused);
      return;
    }
    if (method === 'GET' || method === 'HEAD') {
      state.bodyDone = true;
      run(undefined);
      return;
    }
    if (options.streamsBody?.(method, req.getUrl())) {
      run(bodyStream(res, state));
      return;
    }
    const declared = Number(headers.find(([key]) => key === 'content-length')?.[1] ?? 0);
    if (declared > options.maxBodyBytes) {
      write(bodyTooLarge(options.maxBodyBytes));
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    res.onData((chunk, isLast) => {
      if (state.answered) return;
      size += chunk.byteLength;
      if (size > options.maxBodyBytes) {
        write(bodyTooLarge(options.maxBodyBytes));
        return;
      }
      // The chunk's memory is reused once this callback returns: copy it.
      chunks.push(Buffer.from(chunk.slice(0)));
      if (!isLast) return;
      state.bodyDone = true;
      try {
        run(Buffer.concat(chunks));
      } catch (error) {
        options.onError(error, `${method} request`);
        write(internalError());
      }
    });
  } catch (error) {
    options.onError(error, `${method} request`);
    write(internalError());
  }
}

/** One request's life, shared by the reading and the writing side. */
interface Exchange {
  /** uWS said the client is gone: the HttpResponse must not be touched again. */
  aborted: boolean;
  /** A Response is being written: no other may start. */
  answered: boolean;
  /** The answer is wholly handed to uWS (end/tryEnd succeeded): the HttpResponse must not be touched again. */
  finished: boolean;
  /** The whole request body has arrived (or there is none). */
  bodyDone: boolean;
  /** Run once, when uWS reports the abort. */
  readonly onAbort: Array<() => void>;
  /** Run once, just before the answer's first write. */
  readonly onAnswer: Array<() => void>;
}

/**
 * The request body as a stream the handler reads: uWS's chunks are copied (it reuses their memory)
 * and queued here; past REQUEST_QUEUE_BYTES the socket is paused, and resumed as the handler reads.
 * An abort ends the stream with RequestAbortedError, but only after the handler has read what had
 * arrived: a tus PATCH cut mid-body keeps every byte that reached the server (the client resumes
 * from there). The queue is ours, not the stream's, because a web stream's error() drops what it
 * still holds.
 */
function bodyStream(res: HttpResponse, state: Exchange): ReadableStream<Uint8Array> {
  const queue: Uint8Array[] = [];
  let queuedBytes = 0;
  let paused = false;
  let ended = false;
  let failure: Error | undefined;
  /** The pull waiting for the next chunk, end or failure. */
  let wake: (() => void) | undefined;
  const live = (): boolean => !state.aborted && !state.finished;
  const notify = (): void => {
    const waiting = wake;
    wake = undefined;
    waiting?.();
  };
  const resumeIfDrained = (): void => {
    if (paused && queuedBytes < REQUEST_QUEUE_BYTES && live()) {
      paused = false;
      res.resume();
    }
  };
  const stream = new ReadableStream<Uint8Array>(
    {
      pull: async (controller) => {
        while (queue.length === 0 && !ended && failure === undefined) await new Promise<void>((resolve) => (wake = resolve));
        const chunk = queue.shift();
        if (chunk !== undefined) {
          queuedBytes -= chunk.byteLength;
          controller.enqueue(chunk);
          resumeIfDrained();
          return;
        }
        if (failure !== undefined) controller.error(failure);
        else controller.close();
      },
      cancel: () => {
        // The handler wants no more: let the rest flow (and be dropped) rather than stall the socket.
        // Its answer closes the connection, the body being unfinished (respond).
        ended = true;
        queue.length = 0;
        queuedBytes = 0;
        if (paused && live()) {
          paused = false;
          res.resume();
        }
      },
    },
    { highWaterMark: 0 },
  );
  const fail = (): void => {
    if (ended || failure !== undefined) return;
    failure = new RequestAbortedError();
    notify();
  };
  state.onAbort.push(fail);
  // Answered before the whole body came: the rest is read and dropped (a paused socket would stall
  // the connection); the stream ends short, as the handler no longer reads it.
  state.onAnswer.push(() => {
    fail();
    if (paused) {
      paused = false;
      res.resume();
    }
  });
  res.onData((chunk, isLast) => {
    if (isLast) state.bodyDone = true;
    if (ended || failure !== undefined) return;
    // The chunk's memory is reused once this callback returns: copy it.
    if (chunk.byteLength > 0) {
      queue.push(new Uint8Array(chunk.slice(0)));
      queuedBytes += chunk.byteLength;
    }
    if (isLast) ended = true;
    notify();
    if (!ended && !paused && queuedBytes >= REQUEST_QUEUE_BYTES && live()) {
      paused = true;
      res.pause();
    }
  });
  return stream;
}

/**
 * Writes a Response once, unless the client left. One with a body and a Content-Length is sent with
 * tryEnd as its stream yields, waiting for onWritable under backpressure, its stream cancelled on abort;
 * any other is read whole, then ended in one corked write. HEAD gets the headers only.
 */
function respond(res: HttpResponse, state: Exchange, response: Response, method: string, options: TransportOptions): void {
  if (state.answered) {
    void response.body?.cancel().catch(() => {});
    return;
  }
  state.answered = true;
  if (isEventStream(response) && method !== 'HEAD') {
    pipeEventStream(res, state, response).catch((error: unknown) => {
      if (!(error instanceof ResponseCutError)) options.onError(error, 'writing an event stream');
      if (!state.aborted && !state.finished) res.close();
    });
    return;
  }
  const length = streamedLength(response);
  // HEAD of a streamed response or of an event stream (which may never end): its body is not read at all.
  const headOnly = method === 'HEAD' && (length !== undefined || isEventStream(response));
  const sending: Promise<{ body: ArrayBuffer | undefined }> = headOnly
    ? (response.body as ReadableStream<Uint8Array>).cancel().then(() => ({ body: undefined }))
    : length === undefined
      ? response.arrayBuffer().then((body) => ({ body }))
      : Promise.resolve({ body: undefined });
  sending
    .then(async ({ body }) => {
      if (state.aborted) {
        if (length !== undefined && !headOnly) await response.body?.cancel();
        return;
      }
      for (const react of state.onAnswer) react();
      // A refusal before the whole request body came: close, rather than read the rest of it.
      const close = response.headers.get('connection') === 'close' || !state.bodyDone;
      const head = (): void => writeHead(res, response, close);
      if (headOnly) {
        res.cork(() => {
          head();
          res.endWithoutBody(length, close);
        });
        state.finished = true;
      } else if (length === undefined) {
        res.cork(() => {
          head();
          res.end(method === 'HEAD' ? undefined : body, close);
        });
        state.finished = true;
      } else {
        await pipeResponse(res, state, response.body as ReadableStream<Uint8Array>, length, head);
      }
    })
    .catch((error: unknown) => {
      options.onError(error, 'writing an HTTP response');
      if (!state.aborted && !state.finished) res.close();
    });
}

/**
 * The uWS streaming pattern: tryEnd each chunk with the total length; when it could not all be
 * written, wait for onWritable and offer the rest from the offset uWS reports. The stream is read
 * only while the socket takes what it gives.
 */
async function pipeResponse(res: HttpResponse, state: Exchange, body: ReadableStream<Uint8Array>, total: number, writeHead: () => void): Promise<void> {
  const reader = body.getReader();
  let wake: (() => void) | undefined;
  state.onAbort.push(() => wake?.());
  // uWS keeps one writable handler per response; a call after this chunk went out is ignored.
  let waiting: Uint8Array | undefined;
  let base = 0;
  let ok = false;
  let finished = false;
  res.onWritable((offset) => {
    if (!waiting) return true;
    [ok, finished] = res.tryEnd(waiting.subarray(offset - base), total);
    if (ok || finished) {
      waiting = undefined;
      wake?.();
    }
    return ok;
  });
  let headWritten = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (state.aborted) {
        await reader.cancel();
        return;
      }
      if (done) throw new Error(`the response body ended before its Content-Length (${total} bytes)`);
      res.cork(() => {
        if (!headWritten) writeHead();
        headWritten = true;
        base = res.getWriteOffset();
        [ok, finished] = res.tryEnd(value, total);
      });
      if (!ok && !finished) {
        waiting = value;
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
      if (finished) {
        state.finished = true;
        // More than the Content-Length: the rest is not wanted.
        await reader.cancel();
        return;
      }
      if (state.aborted) {
        await reader.cancel();
        return;
      }
    }
  } catch (error) {
    await reader.cancel().catch(() => {});
    throw error;
  }
}

/**
 * An event stream (no length): each chunk goes out with write(), which uWS sends in chunked encoding
 * at once, buffering what the socket does not take; while it holds any, the stream is not read until
 * onWritable. An abort cancels the stream at once, also while its read waits for the next chunk.
 */
async function pipeEventStream(res: HttpResponse, state: Exchange, response: Response): Promise<void> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  let wake: (() => void) | undefined;
  const cancel = (): void => {
    wake?.();
    reader.cancel().catch(() => {});
  };
  if (state.aborted) {
    cancel();
    return;
  }
  state.onAbort.push(cancel);
  for (const react of state.onAnswer) react();
  res.onWritable(() => {
    wake?.();
    return true;
  });
  let headWritten = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (state.aborted) return;
    if (done) break;
    // A zero-length write would end uWS's chunked body.
    if (value.byteLength === 0) continue;
    let ok = false;
    res.cork(() => {
      if (!headWritten) writeHead(res, response, false);
      headWritten = true;
      ok = res.write(value);
    });
    if (!ok) {
      await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      if (state.aborted) return;
    }
  }
  res.cork(() => {
    if (!headWritten) writeHead(res, response, false);
    res.end(undefined, !state.bodyDone);
  });
  state.finished = true;
}

/** The status line and headers (uWS adds the length or chunked encoding itself); `close` leaves out a Connection header, as uWS writes its own. */
function writeHead(res: HttpResponse, response: Response, close: boolean): void {
  res.writeStatus(`${response.status} ${STATUS_CODES[response.status] ?? ''}`);
  response.headers.forEach((value, key) => {
    if (key !== 'content-length' && !(close && key === 'connection')) res.writeHeader(key, value);
  });
}

export function remoteAddress(res: HttpResponse): string {
  return decoder.decode(res.getRemoteAddressAsText()).replace(/^::ffff:/, '');
}
