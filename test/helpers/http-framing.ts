/** A piece of one HTTP response as it went by: `ends` when the response is complete with it. */
export interface ResponsePiece {
  readonly bytes: Buffer;
  readonly ends: boolean;
  /** The response is a `text/event-stream`. */
  readonly eventStream: boolean;
  /** A 101 (an upgraded connection): from here on the bytes are not HTTP. */
  readonly upgraded: boolean;
}

type State =
  | { kind: 'head' }
  | { kind: 'length'; left: number }
  | { kind: 'chunk-size' }
  | { kind: 'chunk-data'; left: number }
  | { kind: 'trailers' }
  | { kind: 'until-close' }
  | { kind: 'raw' };

/**
 * Finds where each HTTP/1.1 response of a connection ends, in the bytes a
 * server sends (Content-Length, chunked, or until the connection closes), so
 * a test proxy can hold a response back until it is complete — as a buffering
 * proxy does — or tell which connection is carrying an event stream.
 */
export class ResponseFramer {
  private state: State = { kind: 'head' };
  private pending = Buffer.alloc(0);
  private eventStream = false;
  private upgraded = false;

  push(chunk: Buffer): ResponsePiece[] {
    const pieces: ResponsePiece[] = [];
    let data = Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    let start = 0;
    let at = 0;
    const emit = (end: number, ends: boolean): void => {
      if (end > start || ends) pieces.push({ bytes: data.subarray(start, end), ends, eventStream: this.eventStream, upgraded: this.upgraded });
      start = end;
    };
    while (at < data.length) {
      const state = this.state;
      if (state.kind === 'raw' || state.kind === 'until-close') {
        at = data.length;
        break;
      }
      if (state.kind === 'length' || state.kind === 'chunk-data') {
        const take = Math.min(state.left, data.length - at);
        at += take;
        state.left -= take;
        if (state.left > 0) break;
        if (state.kind === 'length') {
          emit(at, true);
          this.state = { kind: 'head' };
        } else {
          this.state = { kind: 'chunk-size' };
        }
        continue;
      }
      // Line-based states: wait for the whole line (or head).
      const terminator = state.kind === 'head' ? '\r\n\r\n' : '\r\n';
      const end = data.indexOf(terminator, at);
      if (end === -1) {
        // Keep the unfinished part for the next chunk; what came before it is passed on.
        emit(at, false);
        this.pending = Buffer.from(data.subarray(at));
        data = data.subarray(0, at);
        break;
      }
      const text = data.subarray(at, end).toString('latin1');
      at = end + terminator.length;
      if (state.kind === 'head') this.head(text, () => emit(at, true));
      else if (state.kind === 'chunk-size') {
        const size = Number.parseInt(text.split(';')[0] as string, 16);
        // The chunk's data and its CRLF.
        this.state = size === 0 ? { kind: 'trailers' } : { kind: 'chunk-data', left: size + 2 };
      } else if (text === '') {
        emit(at, true);
        this.state = { kind: 'head' };
      }
    }
    emit(Math.min(at, data.length), false);
    return pieces;
  }

  private head(text: string, bodiless: () => void): void {
    const [statusLine = '', ...lines] = text.split('\r\n');
    const status = Number(statusLine.split(' ')[1]);
    const headers = new Map(lines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]));
    this.eventStream = (headers.get('content-type') ?? '').includes('text/event-stream');
    if (status === 101) {
      this.upgraded = true;
      this.state = { kind: 'raw' };
      bodiless();
      return;
    }
    if ((status >= 100 && status < 200) || status === 204 || status === 304) {
      bodiless();
      return;
    }
    if ((headers.get('transfer-encoding') ?? '').toLowerCase().includes('chunked')) this.state = { kind: 'chunk-size' };
    else if (headers.has('content-length')) {
      const length = Number(headers.get('content-length'));
      if (length === 0) bodiless();
      else this.state = { kind: 'length', left: length };
    } else this.state = { kind: 'until-close' };
  }
}

/** The head of the first request in `bytes` once it is complete: its request line and whether it asks for a WebSocket. */
export function requestHead(bytes: Buffer): { complete: boolean; upgrade: boolean } {
  const end = bytes.indexOf('\r\n\r\n');
  if (end === -1) return { complete: false, upgrade: false };
  const head = bytes.subarray(0, end).toString('latin1').toLowerCase();
  return { complete: true, upgrade: /\r\nupgrade:\s*websocket/.test(head) };
}
