import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResumeBuffer } from '../../src/session/stream/resume-buffer.js';
import { PollSink, type SinkOwner } from '../../src/session/stream/sinks.js';

/** One poll from `afterId`, as StreamConnection.attach makes it: the ids its answer carries. */
async function poll(buffer: ResumeBuffer, afterId: number): Promise<number[]> {
  assert.deepEqual(buffer.check(afterId), { ok: true }, `a poll from ${afterId} is refused`);
  buffer.rewind(afterId, true);
  const owner: SinkOwner = { buffer, detach: () => {}, drained: () => {} };
  const sink = new PollSink(owner, 60_000, {});
  sink.flush();
  const text = await (await sink.response).text();
  return [...text.matchAll(/^id: (\d+)$/gm)].map((match) => Number(match[1]));
}

describe('a long-poll answer', () => {
  it('carries no more frames than the buffer keeps, so that a lost answer can be polled for again whole', async () => {
    const buffer = new ResumeBuffer(4, 1 << 20);
    for (let index = 0; index < 10; index++) buffer.push(`{"n":${index}}`);
    const first = await poll(buffer, 0);
    assert.deepEqual(first, [1, 2, 3, 4]);
    // The answer never reached the client: it polls again from where it was, and gets the same frames.
    assert.deepEqual(await poll(buffer, 0), [1, 2, 3, 4]);
    assert.deepEqual(await poll(buffer, 4), [5, 6, 7, 8]);
    assert.deepEqual(await poll(buffer, 8), [9, 10]);
  });

  it('carries no more bytes than the buffer keeps (one frame at least)', async () => {
    const buffer = new ResumeBuffer(100, 25);
    for (let index = 0; index < 5; index++) buffer.push('0123456789');
    buffer.push('x'.repeat(40));
    assert.deepEqual(await poll(buffer, 0), [1, 2]);
    assert.deepEqual(await poll(buffer, 0), [1, 2]);
    assert.deepEqual(await poll(buffer, 2), [3, 4]);
    assert.deepEqual(await poll(buffer, 4), [5]);
    assert.deepEqual(await poll(buffer, 5), [6]);
  });

  it('carries at most 64 KiB of frames however much the buffer keeps: a repeated poll for old frames costs the server no more than that', async () => {
    const buffer = new ResumeBuffer(1024, 1 << 20);
    for (let index = 0; index < 40; index++) buffer.push(JSON.stringify({ n: index, text: 'x'.repeat(15_000) }));
    const first = await poll(buffer, 0);
    // 15 kB frames: four fit in 64 KiB; the client polls again at once for the rest.
    assert.deepEqual(first, [1, 2, 3, 4]);
    assert.deepEqual(await poll(buffer, 0), [1, 2, 3, 4]);
    assert.deepEqual(await poll(buffer, 4), [5, 6, 7, 8]);
  });
});
