import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResponseFramer } from '../helpers/http-framing.js';

/** The test proxy's reading of responses: where each ends, whatever the chunks. */
describe('the test proxy’s response framing', () => {
  const fixed = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
  const chunked = 'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n: open\n\r\n10\r\nid: 1\ndata: {}\n\n\r\n0\r\n\r\n';
  const empty = 'HTTP/1.1 204 No Content\r\n\r\n';

  function ends(chunks: string[]): string[] {
    const framer = new ResponseFramer();
    const complete: string[] = [];
    let current = '';
    for (const chunk of chunks) {
      for (const piece of framer.push(Buffer.from(chunk, 'latin1'))) {
        current += piece.bytes.toString('latin1');
        if (piece.ends) {
          complete.push(current);
          current = '';
        }
      }
    }
    return complete;
  }

  it('finds the end of Content-Length, chunked and bodiless responses, however the bytes are cut', () => {
    const all = fixed + chunked + empty;
    for (let cut = 0; cut <= all.length; cut++) {
      assert.deepEqual(ends([all.slice(0, cut), all.slice(cut)]), [fixed, chunked, empty], `cut at ${cut}`);
    }
    assert.deepEqual(ends([...all]), [fixed, chunked, empty], 'one byte at a time');
  });

  it('says which response is an event stream, and stops reading at an upgrade', () => {
    const framer = new ResponseFramer();
    const stream = framer.push(Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n: open\n\r\n'));
    assert.ok(stream.every((piece) => piece.eventStream && !piece.ends));
    const upgrade = new ResponseFramer().push(Buffer.from('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello', 'latin1'));
    assert.equal(upgrade.map((piece) => piece.bytes.toString('latin1')).join(''), 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x05hello');
    assert.ok(upgrade.every((piece) => piece.upgraded));
  });
});
