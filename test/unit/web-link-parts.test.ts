import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { type TextPart, splitLinks } from '../../web/src/link-parts.js';

const text = (t: string): TextPart => ({ kind: 'text', text: t });
const link = (t: string, href = t): TextPart => ({ kind: 'link', text: t, href });

describe('the web client finds links in message text', () => {
  const cases: Array<[string, TextPart[]]> = [
    ['no link here', [text('no link here')]],
    ['', [text('')]],
    ['see https://example.org/a?b=1#c now', [text('see '), link('https://example.org/a?b=1#c'), text(' now')]],
    ['http://example.org', [link('http://example.org', 'http://example.org/')]],
    ['end of sentence https://example.org/x.', [text('end of sentence '), link('https://example.org/x'), text('.')]],
    ['(see https://en.wikipedia.org/wiki/Foo_(bar))', [text('(see '), link('https://en.wikipedia.org/wiki/Foo_(bar)'), text(')')]],
    ['two: https://a.example/1, https://b.example/2!', [text('two: '), link('https://a.example/1'), text(', '), link('https://b.example/2'), text('!')]],
    ['HTTPS://EXAMPLE.ORG/Up', [link('HTTPS://EXAMPLE.ORG/Up', 'https://example.org/Up')]],
    // Never another scheme, and never a scheme without a host.
    ['javascript:alert(1) and data:text/html,<b>x</b>', [text('javascript:alert(1) and data:text/html,<b>x</b>')]],
    ['ftp://example.org/file', [text('ftp://example.org/file')]],
    ['http://', [text('http://')]],
    ['<a href="https://x.example">', [text('<a href="'), link('https://x.example', 'https://x.example/'), text('">')]],
  ];
  for (const [input, expected] of cases) {
    it(`splits ${JSON.stringify(input)}`, () => assert.deepEqual(splitLinks(input), expected));
  }
});
