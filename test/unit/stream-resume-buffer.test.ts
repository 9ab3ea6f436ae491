import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ResumeBuffer } from '../../src/session/stream/resume-buffer.js';
import { KEEPALIVE, closeEvent, frameEvent } from '../../src/session/stream/sse.js';

function takeAll(buffer: ResumeBuffer): number[] {
  const ids: number[] = [];
  for (let frame = buffer.takeNext(); frame; frame = buffer.takeNext()) ids.push(frame.id);
  return ids;
}

describe('the stream resume buffer', () => {
  it('numbers frames from 1 and hands each unwritten frame out once, in order', () => {
    const buffer = new ResumeBuffer(4, 1 << 20);
    for (const text of ['a', 'bb', 'ccc']) buffer.push(text);
    assert.equal(buffer.last, 3);
    assert.equal(buffer.unwrittenBytes, 6);
    assert.deepEqual(takeAll(buffer), [1, 2, 3]);
    assert.equal(buffer.unwrittenBytes, 0);
    assert.deepEqual(takeAll(buffer), []);
  });

  it('never drops an unwritten frame, however many wait', () => {
    const buffer = new ResumeBuffer(2, 10);
    for (let index = 0; index < 50; index++) buffer.push('xxxxxxxx');
    assert.equal(buffer.unwrittenBytes, 400);
    assert.deepEqual(takeAll(buffer).length, 50);
  });

  it('keeps the newest written frames for a resume, bounded by count and by bytes', () => {
    const byCount = new ResumeBuffer(3, 1 << 20);
    for (let index = 0; index < 10; index++) byCount.push('x');
    takeAll(byCount);
    assert.deepEqual(byCount.check(7), { ok: true });
    assert.deepEqual(byCount.check(6), { ok: false, problem: 'gone', oldestId: 8 });
    const byBytes = new ResumeBuffer(100, 25);
    for (let index = 0; index < 10; index++) byBytes.push('0123456789');
    takeAll(byBytes);
    assert.deepEqual(byBytes.check(8), { ok: true });
    assert.equal(byBytes.check(7).ok, false);
  });

  it('resumes after an id: the frames after it come again, nothing before it, and an id never sent is refused', () => {
    const buffer = new ResumeBuffer(10, 1 << 20);
    for (let index = 0; index < 5; index++) buffer.push(`f${index}`);
    takeAll(buffer);
    assert.deepEqual(buffer.check(6), { ok: false, problem: 'future', lastId: 5 });
    assert.deepEqual(buffer.check(0), { ok: true });
    buffer.rewind(3, false);
    assert.equal(buffer.unwrittenBytes, 4);
    assert.deepEqual(takeAll(buffer), [4, 5]);
    buffer.push('f5');
    buffer.rewind(2, false);
    assert.deepEqual(takeAll(buffer), [3, 4, 5, 6]);
  });

  it('drops acknowledged frames (poll mode): an older id is then gone', () => {
    const buffer = new ResumeBuffer(10, 1 << 20);
    for (let index = 0; index < 4; index++) buffer.push('x');
    takeAll(buffer);
    buffer.rewind(3, true);
    assert.deepEqual(buffer.check(3), { ok: true });
    assert.equal(buffer.check(2).ok, false);
    assert.deepEqual(takeAll(buffer), [4]);
  });
});

describe('the event-stream encoding', () => {
  it('writes a frame as an id and a data line, ending with a blank line', () => {
    assert.equal(frameEvent(12, '{"type":"pong","id":"p"}'), 'id: 12\ndata: {"type":"pong","id":"p"}\n\n');
  });

  it('splits a text with line breaks into data lines, so that no field is cut', () => {
    assert.equal(frameEvent(1, 'a\nb\r\nc'), 'id: 1\ndata: a\ndata: b\ndata: c\n\n');
  });

  it('closes with the close code, its reason name and the message as JSON', () => {
    assert.equal(closeEvent(4003, 'no frame for 90000 ms'), 'event: close\ndata: {"code":4003,"reason":"heartbeat_timeout","message":"no frame for 90000 ms"}\n\n');
    assert.equal(closeEvent(1006, 'resume_failed'), 'event: close\ndata: {"code":1006,"reason":"closed","message":"resume_failed"}\n\n');
  });

  it('keeps an idle stream alive with a comment line', () => {
    assert.equal(KEEPALIVE, ': keepalive\n\n');
  });
});
