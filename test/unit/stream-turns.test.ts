import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { StreamSink } from '../../src/session/stream/sinks.js';
import { OPENED, frameEvent } from '../../src/session/stream/sse.js';
import { StreamConnection, type StreamListener } from '../../src/session/stream/stream-connection.js';
import { StreamTopics } from '../../src/session/stream/topics.js';
import { StreamTurns } from '../../src/session/stream/turns.js';

const TOKEN = 'a'.repeat(43);

/** A connection with a live stream response, its listener authenticated (or not) as device 7. */
function streamed(authenticated = true) {
  const turns = new StreamTurns(60_000);
  const connection = new StreamConnection('n1.sid', '127.0.0.1', undefined, TOKEN, {
    topics: new StreamTopics(),
    resumeFrames: 16,
    maxBufferedBytes: 1 << 20,
    lingerMs: 1000,
    forget: () => {},
    onError: (error) => {
      throw error;
    },
  });
  let drains = 0;
  const listener: StreamListener = {
    deviceId: authenticated ? 7 : undefined,
    onMessage: () => {},
    onBinary: () => {},
    onDrain: () => drains++,
    onClose: () => {},
  };
  connection.listen(listener);
  const sink = new StreamSink(connection, turns);
  connection.attach(sink, 0, true);
  const reader = sink.body.getReader();
  const decoder = new TextDecoder();
  const chunk = async (): Promise<string> => {
    const { value, done } = await reader.read();
    assert.equal(done, false);
    return decoder.decode(value);
  };
  return { connection, sink, chunk, drains: () => drains };
}

const turnEnd = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the stream response and the event-loop turn', () => {
  it('writes the frames sent in one turn as one chunk at the turn end, numbered in order', async () => {
    const { connection, sink, chunk, drains } = streamed();
    assert.equal(await chunk(), OPENED);
    for (const text of ['{"n":1}', '{"n":2}', '{"n":3}']) assert.notEqual(connection.send(text), 'dropped');
    // Nothing is written before the turn ends: the three frames wait in the resume buffer.
    assert.equal(sink.queued(), 0);
    assert.equal(connection.buffer.unwrittenBytes, 21);
    await turnEnd();
    assert.equal(connection.buffer.unwrittenBytes, 0);
    assert.equal(drains(), 1);
    assert.equal(await chunk(), frameEvent(1, '{"n":1}') + frameEvent(2, '{"n":2}') + frameEvent(3, '{"n":3}'));
    // The next turn's frames are the next chunk, and their ids carry on.
    connection.send('{"n":4}');
    connection.send('{"n":5}');
    assert.equal(await chunk(), frameEvent(4, '{"n":4}') + frameEvent(5, '{"n":5}'));
    connection.close(1000, 'bye');
  });

  it('writes what waits with the close event when the session closes within the turn', async () => {
    const { connection, chunk } = streamed();
    assert.equal(await chunk(), OPENED);
    connection.send('{"last":true}');
    connection.close(4002, 'refused');
    const text = await chunk();
    assert.ok(text.startsWith(frameEvent(1, '{"last":true}') + 'event: close\n'), text);
    await turnEnd();
  });
});

describe('a stream request bearing the session token', () => {
  it('is the session device only when the session is open, authenticated, and the token is the very one it opened with', () => {
    const { connection } = streamed();
    assert.equal(connection.deviceBearing(TOKEN), 7);
    assert.equal(connection.deviceBearing(`${'a'.repeat(42)}b`), undefined, 'same length, one character off');
    assert.equal(connection.deviceBearing('a'), undefined);
    assert.equal(connection.deviceBearing(''), undefined);
    connection.close(1000, 'bye');
    assert.equal(connection.deviceBearing(TOKEN), undefined, 'a closed session vouches for nobody');
  });

  it('is checked in full while the session has not authenticated', () => {
    const { connection } = streamed(false);
    assert.equal(connection.deviceBearing(TOKEN), undefined);
    connection.close(1000, 'bye');
  });
});
