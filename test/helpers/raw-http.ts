import { connect } from 'node:net';

export interface RawAnswer {
  /** The status line's code, or undefined when the server closed without one. */
  readonly status: number | undefined;
  readonly head: string;
  readonly body: string;
}

/**
 * Sends `request` byte for byte (latin1: one byte per character) over a fresh TCP connection
 * and reads one response — for requests that fetch() refuses to send (TRACE, `*`, raw bytes in headers).
 * Resolves when the response's body is complete (by length or chunks) or the server closes the connection.
 */
export function rawRequest(port: number, request: string): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(Buffer.from(request, 'latin1')));
    let received = '';
    const finish = (): void => {
      socket.destroy();
      const end = received.indexOf('\r\n\r\n');
      const head = end < 0 ? received : received.slice(0, end);
      const match = /^HTTP\/1\.1 (\d{3})/.exec(head);
      const raw = end < 0 ? '' : received.slice(end + 4);
      resolve({ status: match ? Number(match[1]) : undefined, head, body: /\r\ntransfer-encoding: *chunked/i.test(head) ? dechunk(raw) : raw });
    };
    socket.on('data', (chunk) => {
      received += chunk.toString('latin1');
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = received.slice(0, end);
      const length = /\r\ncontent-length: *(\d+)/i.exec(head);
      if (length && received.length - end - 4 >= Number(length[1])) finish();
      if (/\r\ntransfer-encoding: *chunked/i.test(head) && received.endsWith('\r\n0\r\n\r\n')) finish();
    });
    socket.on('close', finish);
    socket.on('error', reject);
  });
}

function dechunk(raw: string): string {
  let body = '';
  let at = 0;
  for (;;) {
    const lineEnd = raw.indexOf('\r\n', at);
    const size = Number.parseInt(raw.slice(at, lineEnd), 16);
    if (!(size > 0)) return body;
    body += raw.slice(lineEnd + 2, lineEnd + 2 + size);
    at = lineEnd + 2 + size + 2;
  }
}
