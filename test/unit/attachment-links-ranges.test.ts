import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { checkLink, signLink } from '../../src/services/attachments/links.js';
import { etagListMatches, parseRange } from '../../src/transport/http/ranges.js';

describe('parseRange', () => {
  const size = 1000;
  const cases: [string | null, ReturnType<typeof parseRange>][] = [
    [null, { kind: 'whole' }],
    ['bytes=0-99', { kind: 'partial', start: 0, end: 99 }],
    ['bytes=100-199', { kind: 'partial', start: 100, end: 199 }],
    ['bytes=900-', { kind: 'partial', start: 900, end: 999 }],
    ['bytes=-100', { kind: 'partial', start: 900, end: 999 }],
    ['bytes=-5000', { kind: 'partial', start: 0, end: 999 }],
    ['bytes=990-5000', { kind: 'partial', start: 990, end: 999 }],
    ['bytes=999-999', { kind: 'partial', start: 999, end: 999 }],
    ['Bytes = 5 - 9 ', { kind: 'partial', start: 5, end: 9 }],
    ['bytes=1000-', { kind: 'unsatisfiable' }],
    ['bytes=1000-2000', { kind: 'unsatisfiable' }],
    ['bytes=-0', { kind: 'unsatisfiable' }],
    ['bytes=0-9,20-29', { kind: 'whole' }],
    ['bytes=9-0', { kind: 'whole' }],
    ['bytes=-', { kind: 'whole' }],
    ['bytes=abc', { kind: 'whole' }],
    ['items=0-9', { kind: 'whole' }],
    ['bytes=1-2-3', { kind: 'whole' }],
    ['bytes=0-9999999999999999999', { kind: 'partial', start: 0, end: 999 }],
    ['bytes=99999999999999999999-', { kind: 'unsatisfiable' }],
    ['bytes=-99999999999999999999', { kind: 'partial', start: 0, end: 999 }],
  ];
  for (const [header, expected] of cases) {
    it(`${JSON.stringify(header)} of 1000 bytes → ${JSON.stringify(expected)}`, () => {
      assert.deepEqual(parseRange(header, size), expected);
    });
  }

  it('any range of an empty file is unsatisfiable', () => {
    assert.deepEqual(parseRange('bytes=0-', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange('bytes=-10', 0), { kind: 'unsatisfiable' });
    assert.deepEqual(parseRange(null, 0), { kind: 'whole' });
  });
});

describe('etagListMatches', () => {
  it('matches a listed tag, a weak one, or *', () => {
    assert.equal(etagListMatches('"abc"', '"abc"'), true);
    assert.equal(etagListMatches('"x", W/"abc"', '"abc"'), true);
    assert.equal(etagListMatches('*', '"abc"'), true);
    assert.equal(etagListMatches('"abd"', '"abc"'), false);
    assert.equal(etagListMatches(null, '"abc"'), false);
  });
});

describe('signed links', () => {
  const secret = randomBytes(32);
  const now = 1_800_000_000;

  it('a link the server signed is valid until its time, then expired', () => {
    const sig = signLink(secret, 'att1', 'file', now + 300);
    assert.match(sig, /^[A-Za-z0-9_-]{43}$/);
    assert.equal(checkLink(secret, 'att1', 'file', String(now + 300), sig, now), 'valid');
    assert.equal(checkLink(secret, 'att1', 'file', String(now + 300), sig, now + 299), 'valid');
    assert.equal(checkLink(secret, 'att1', 'file', String(now + 300), sig, now + 300), 'expired');
  });

  it('an edited id, variant, time or signature, another secret, or a missing part is invalid', () => {
    const exp = String(now + 300);
    const sig = signLink(secret, 'att1', 'file', now + 300);
    assert.equal(checkLink(secret, 'att2', 'file', exp, sig, now), 'invalid');
    assert.equal(checkLink(secret, 'att1', 'thumbnail', exp, sig, now), 'invalid');
    assert.equal(checkLink(secret, 'att1', 'file', String(now + 3000), sig, now), 'invalid', 'a later time');
    assert.equal(checkLink(secret, 'att1', 'file', `0${exp}`, sig, now), 'invalid', 'a leading zero');
    const flipped = (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1);
    assert.equal(checkLink(secret, 'att1', 'file', exp, flipped, now), 'invalid');
    assert.equal(checkLink(randomBytes(32), 'att1', 'file', exp, sig, now), 'invalid');
    assert.equal(checkLink(secret, 'att1', 'file', null, sig, now), 'invalid');
    assert.equal(checkLink(secret, 'att1', 'file', exp, null, now), 'invalid');
    assert.equal(checkLink(secret, 'att1', 'file', exp, `${sig}=`, now), 'invalid');
  });

  it('a forged link is invalid even when its time is past (the signature is checked first)', () => {
    const sig = signLink(randomBytes(32), 'att1', 'file', now - 10);
    assert.equal(checkLink(secret, 'att1', 'file', String(now - 10), sig, now), 'invalid');
  });
});
