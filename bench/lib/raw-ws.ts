import { Socket } from 'node:net';

/**
 * A minimal WebSocket client on a raw TCP socket, for the load generator's
 * receiving side: it reads frame headers straight out of the socket's buffers
 * and hands text payloads over as (buffer, start, end) without making strings,
 * which lets one core take in several times what the `ws` package can. Text
 * frames only; pings are answered; no fragmentation, no extensions.
 */
export class RawWebSocket {
  private pending: Buffer | undefined;
  private upgraded = false;
  /** A text frame: its payload is buffer[start, end); `at` is when its chunk arrived (one clock read per chunk, not per frame). */
  onText: (buffer: Buffer, start: number, end: number, at: number) => void = () => {};
  /** The connection ended (either side). */
  onClose: () => void = () => {};
  /** Every frame of a chunk was handed to onText: a place to answer them with one write. */
  onChunkDone: () => void = () => {};

  private constructor(private readonly socket: Socket) {}

  static connect(url: string): Promise<RawWebSocket> {
    const { hostname, port, pathname } = new URL(url);
    return new Promise((resolve, reject) => {
      const socket = new Socket();
      const ws = new RawWebSocket(socket);
      socket.setNoDelay(true);
      socket.on('error', reject);
      socket.on('close', () => ws.onClose());
      socket.on('data', (chunk: Buffer) => {
        if (!ws.upgraded) {
          const text = chunk.toString('latin1');
          const end = text.indexOf('\r\n\r\n');
          if (end < 0) return reject(new Error('partial upgrade response'));
          if (!text.startsWith('HTTP/1.1 101')) return reject(new Error(`upgrade refused: ${text.split('\r\n')[0]}`));
          ws.upgraded = true;
          resolve(ws);
          if (end + 4 < chunk.length) ws.receive(chunk.subarray(end + 4));
          return;
        }
        ws.receive(chunk);
      });
      socket.connect(Number(port), hostname, () => {
        socket.write(
          `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
        );
      });
    });
  }

  /** Sends a text frame (masked, as a client must; the key is zero, so the bytes go as they are). */
  send(text: string): void {
    this.frame(0x1, Buffer.from(text));
  }

  /** Writes frames built beforehand by `textFrames`, as they are: no copy, one system call. */
  sendFrames(frames: Buffer): void {
    this.socket.write(frames);
  }

  /** `count` copies of a client text frame of `text`, back to back, to send whole or in part with `sendFrames`. */
  static textFrames(text: string, count: number): { readonly frames: Buffer; readonly frameLength: number } {
    const one = RawWebSocket.encode(0x1, Buffer.from(text));
    return { frames: Buffer.concat(Array.from({ length: count }, () => one)), frameLength: one.length };
  }

  destroy(): void {
    this.socket.destroy();
  }

  private frame(opcode: number, payload: Buffer): void {
    this.socket.write(RawWebSocket.encode(opcode, payload));
  }

  private static encode(opcode: number, payload: Buffer): Buffer {
    const length = payload.length;
    const header = Buffer.alloc(length < 126 ? 6 : length < 65536 ? 8 : 14);
    header[0] = 0x80 | opcode;
    if (length < 126) header[1] = 0x80 | length;
    else if (length < 65536) {
      header[1] = 0x80 | 126;
      header.writeUInt16BE(length, 2);
    } else {
      header[1] = 0x80 | 127;
      header.writeBigUInt64BE(BigInt(length), 2);
    }
    return Buffer.concat([header, payload]);
  }

  private receive(chunk: Buffer): void {
    const arrived = performance.timeOrigin + performance.now();
    let buffer = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let at = 0;
    while (buffer.length - at >= 2) {
      const opcode = (buffer[at] as number) & 0x0f;
      let length = (buffer[at + 1] as number) & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (buffer.length - at < 4) break;
        length = buffer.readUInt16BE(at + 2);
        start = at + 4;
      } else if (length === 127) {
        if (buffer.length - at < 10) break;
        length = Number(buffer.readBigUInt64BE(at + 2));
        start = at + 10;
      }
      if (buffer.length < start + length) break;
      if (opcode === 0x1) this.onText(buffer, start, start + length, arrived);
      else if (opcode === 0x9) this.frame(0xa, Buffer.from(buffer.subarray(start, start + length)));
      at = start + length;
    }
    if (at < buffer.length) {
      buffer = buffer.subarray(at);
      this.pending = Buffer.from(buffer);
    }
    this.onChunkDone();
  }
}

/**
 * The server frame's type, told by its first letters without making a string:
 * every server frame starts with `{"type":"` (9 bytes), so byte 9 and 10 name it.
 */
export function frameType(buffer: Buffer, start: number): 'message' | 'ack' | 'inbox_done' | 'receipt' | 'delivered' | 'other' {
  const first = buffer[start + 9];
  if (first === 0x6d /* m */ && buffer[start + 10] === 0x65 /* e */) return 'message';
  if (first === 0x61 /* a */ && buffer[start + 10] === 0x63 /* c */) return 'ack';
  if (first === 0x69 /* i */ && buffer[start + 10] === 0x6e /* n */) return 'inbox_done';
  // `rec` is receipt or receipts (a reply, only when asked): the quote after `receipt` tells them apart; not read_state.
  if (first === 0x72 /* r */ && buffer[start + 11] === 0x63 /* c */) return buffer[start + 16] === 0x22 /* " */ ? 'receipt' : 'other';
  // `deli` is the delivered reply: not delete, device_message(s).
  if (first === 0x64 /* d */ && buffer[start + 12] === 0x69 /* i */ && buffer[start + 11] === 0x6c /* l */) return 'delivered';
  return 'other';
}

/** The number after `key` in the payload, read from the bytes. */
export function numberIn(buffer: Buffer, start: number, end: number, key: Buffer): number {
  const at = buffer.indexOf(key, start);
  if (at < 0 || at >= end) return Number.NaN;
  let value = 0;
  let fraction = 0;
  let scale = 1;
  for (let i = at + key.length; i < end; i++) {
    const c = buffer[i] as number;
    if (c === 46) fraction = 1;
    else if (c >= 48 && c <= 57) {
      if (fraction) value += (c - 48) * (scale /= 10);
      else value = value * 10 + (c - 48);
    } else break;
  }
  return value;
}
