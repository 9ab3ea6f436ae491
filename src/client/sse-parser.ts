/** One server-sent event: its `id` field (when it had one), its type (`message` unless named) and its data lines joined. */
export interface SseEvent {
  readonly id: string | undefined;
  readonly event: string;
  readonly data: string;
}

/**
 * A `text/event-stream` parser (the WHATWG rules chatd's stream uses: `id`,
 * `event`, `data`, `:` comments, any line ending) fed bytes as they come. A
 * network read may end anywhere — inside a UTF-8 character, between `\r` and
 * `\n`, inside a field — so nothing is decided until the byte that settles it
 * has arrived. One parser per response: a resumed stream starts clean.
 */
export class SseParser {
  private decoder = new TextDecoder('utf-8');
  private line = '';
  /** The last chunk ended with `\r`: a `\n` that starts the next one belongs to that line ending. */
  private pendingCr = false;
  private id: string | undefined;
  private event = '';
  private data: string[] = [];

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(chunk: Uint8Array | string): void {
    const text = typeof chunk === 'string' ? chunk : this.decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c !== 10 && c !== 13) continue;
      if (c === 10 && this.pendingCr && i === start && this.line === '') {
        // The `\n` of a `\r\n` split across two chunks: the line already ended.
        this.pendingCr = false;
        start = i + 1;
        continue;
      }
      this.pendingCr = false;
      this.endLine(this.line + text.slice(start, i));
      this.line = '';
      if (c === 13) {
        if (i + 1 < text.length) {
          if (text.charCodeAt(i + 1) === 10) i++;
        } else {
          this.pendingCr = true;
        }
      }
      start = i + 1;
    }
    if (start < text.length) {
      this.pendingCr = false;
      this.line += text.slice(start);
    }
  }

  /** The response ended: an event not closed by a blank line is dropped (the standard's rule: it may be cut short). */
  end(): void {
    this.decoder = new TextDecoder('utf-8');
    this.pendingCr = false;
    this.line = '';
    this.data = [];
    this.event = '';
    this.id = undefined;
  }

  private endLine(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return; // a comment: the server's keepalive
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    // `retry` and unknown fields: nothing chatd uses.
  }

  private dispatch(): void {
    const id = this.id;
    const event = this.event || 'message';
    const hadData = this.data.length > 0;
    const data = this.data.join('\n');
    this.data = [];
    this.event = '';
    this.id = undefined;
    if (hadData) this.onEvent({ id, event, data });
  }
}
