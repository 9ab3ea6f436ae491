import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type SseEvent, SseParser } from '../../src/client/sse-parser.js';

function parse(chunks: ReadonlyArray<Uint8Array | string>): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = new SseParser((event) => events.push(event));
  for (const chunk of chunks) parser.push(chunk);
  return events;
}

/** Every way of cutting `bytes` in two, and in single bytes. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const out: Uint8Array[][] = [[...bytes].map((b) => Uint8Array.of(b))];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

describe('the SSE parser', () => {
  const stream = 'id: 1\ndata: {"type":"welcome","text":"h\u00e9llo \u{1f600}"}\n\n: keepalive\n\nid: 2\r\ndata: {"a":1}\r\n\r\nevent: close\rdata: {"code":4003,"reason":"heartbeat_timeout"}\r\r';
  const expected: SseEvent[] = [
    { id: '1', event: 'message', data: '{"type":"welcome","text":"h\u00e9llo \u{1f600}"}' },
    { id: '2', event: 'message', data: '{"a":1}' },
    { id: undefined, event: 'close', data: '{"code":4003,"reason":"heartbeat_timeout"}' },
  ];

  it('reads ids, data, named events and comments with any line ending', () => {
    assert.deepEqual(parse([stream]), expected);
  });

  it('gives the same events however the bytes are cut: inside a UTF-8 character, between \\r and \\n, inside a field', () => {
    const bytes = new TextEncoder().encode(stream);
    for (const chunks of splits(bytes)) assert.deepEqual(parse(chunks), expected, `cut as ${chunks.map((c) => c.length).join('+')}`);
  });

  it('joins data lines with \\n, takes a field without a colon as empty, and drops an event without data', () => {
    assert.deepEqual(parse(['data: a\ndata:b\ndata\n\nid: 7\n\nevent: x\n\n']), [{ id: undefined, event: 'message', data: 'a\nb\n' }]);
  });

  it('drops an event the response ended in the middle of', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((event) => events.push(event));
    parser.push('id: 1\ndata: {"cut":');
    parser.end();
    parser.push('id: 2\ndata: {}\n\n');
    assert.deepEqual(events, [{ id: '2', event: 'message', data: '{}' }]);
  });
});
