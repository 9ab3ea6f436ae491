import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { printable } from '../../src/cli/chat-render.js';

describe('the terminal client prints what others wrote as text only', () => {
  it('turns escape sequences, carriage returns and bidirectional overrides into U+FFFD', () => {
    assert.equal(printable('cat\u001b]0;owned\u0007.jpg'), 'cat\ufffd]0;owned\ufffd.jpg');
    assert.equal(printable('ok\rFAKE'), 'ok\ufffdFAKE');
    assert.equal(printable('invoice\u202Efdp.exe'), 'invoice\ufffdfdp.exe');
    assert.equal(printable('\u009b2J'), '\ufffd2J');
  });

  it('keeps text, newlines, tabs and every other script as they are', () => {
    const text = 'héllo\tworld\n日本語 — ✓ 🎉';
    assert.equal(printable(text), text);
  });
});
