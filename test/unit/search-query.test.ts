import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeSearchCursor, encodeSearchCursor, nextSearchCursor } from '../../src/storage/ports/search.js';
import { escapeLike, ftsString, planSearch } from '../../src/storage/search/query.js';
import { SNIPPET_LENGTH, snippetOf } from '../../src/storage/search/snippet.js';
import { searchableText } from '../../src/storage/search/text.js';

describe('search query plan', () => {
  const cases: Array<[string, ReturnType<typeof planSearch>]> = [
    ['meeting', { kind: 'words', words: ['meeting'] }],
    ['  Meet   tomorrow ', { kind: 'words', words: ['Meet', 'tomorrow'] }],
    ['café', { kind: 'words', words: ['café'] }],
    ['cafe\u0301', { kind: 'words', words: ['café'] }],
    ["don't panic", { kind: 'words', words: ["don't", 'panic'] }],
    ['"quoted', { kind: 'words', words: ['quoted'] }],
    ['NEAR(a b)', { kind: 'words', words: ['NEAR', 'a', 'b'] }],
    // UAX #29 keeps a word:word together; quoted, FTS5 reads it as the phrase "body secret", never a column filter.
    ['body:secret', { kind: 'words', words: ['body:secret'] }],
    ['body: secret', { kind: 'words', words: ['body', 'secret'] }],
    ['a OR b NOT c', { kind: 'words', words: ['a', 'OR', 'b', 'NOT', 'c'] }],
    ['x^2 -y *z*', { kind: 'words', words: ['x', '2', 'y', 'z'] }],
    ['word word WORD', { kind: 'words', words: ['word'] }],
    ['"', { kind: 'substrings', substrings: ['"'] }],
    ['-', { kind: 'substrings', substrings: ['-'] }],
    ['^', { kind: 'substrings', substrings: ['^'] }],
    ['( )', { kind: 'substrings', substrings: ['( )'] }],
    ['👍', { kind: 'substrings', substrings: ['👍'] }],
    ['   ', { kind: 'nothing' }],
    ['', { kind: 'nothing' }],
    ['東京タワー', { kind: 'substrings', substrings: ['東京タワー'] }],
    ['東京', { kind: 'substrings', substrings: ['東京'] }],
    ['我们明天开会', { kind: 'substrings', substrings: ['我们明天开会'] }],
    ['明天 开会', { kind: 'substrings', substrings: ['明天', '开会'] }],
    ['東京 tower', { kind: 'substrings', substrings: ['東京', 'tower'] }],
    ['서울에서 만나요', { kind: 'substrings', substrings: ['서울에서', '만나요'] }],
    ['ภาษาไทย', { kind: 'substrings', substrings: ['ภาษาไทย'] }],
    ['Дела идут', { kind: 'words', words: ['Дела', 'идут'] }],
  ];
  for (const [query, plan] of cases) {
    it(`reads ${JSON.stringify(query)} as ${JSON.stringify(plan)}`, () => assert.deepEqual(planSearch(query), plan));
  }

  it('keeps at most 16 terms', () => {
    const plan = planSearch(Array.from({ length: 40 }, (_, i) => `w${i}`).join(' '));
    assert.equal(plan.kind === 'words' && plan.words.length, 16);
  });

  it('quotes FTS strings and escapes LIKE so that nothing the user types is syntax', () => {
    assert.equal(ftsString('say "hi"'), '"say ""hi"""');
    assert.equal(ftsString('NEAR'), '"NEAR"');
    assert.equal(escapeLike('100%_\\x'), '100\\%\\_\\\\x');
  });
});

describe('search cursor', () => {
  it('round-trips an offset and refuses anything else', () => {
    for (const offset of [0, 1, 20, 999]) assert.equal(decodeSearchCursor(encodeSearchCursor(offset)), offset);
    for (const bad of ['', 'abc', 'o20', '!!', encodeSearchCursor(1000), Buffer.from('o-1').toString('base64url'), Buffer.from('o01').toString('base64url'), 'x'.repeat(40)]) {
      assert.equal(decodeSearchCursor(bad), undefined, bad);
    }
  });
  it('ends at the last page and at 1000 results', () => {
    assert.equal(nextSearchCursor(0, 20, false), null);
    assert.equal(decodeSearchCursor(nextSearchCursor(20, 20, true) as string), 40);
    assert.equal(nextSearchCursor(980, 20, true), null);
  });
});

describe('searchable text', () => {
  it('reads body.text, a string body and the attachment names, as the SQL does', () => {
    assert.equal(searchableText('{"text":"hi"}', null), 'hi');
    assert.equal(searchableText('"plain"', null), 'plain');
    assert.equal(searchableText('null', '[{"id":"a","name":"x.pdf"},{"id":"b"},{"id":"c","name":"y.jpg"}]'), 'x.pdf y.jpg');
    assert.equal(searchableText('{"text":"see"}', '[{"id":"a","name":"x.pdf"}]'), 'see x.pdf');
    assert.equal(searchableText('{"text":42}', null), '');
    assert.equal(searchableText('[1]', null), '');
    assert.equal(searchableText('not json', 'nor this'), '');
  });
});

describe('search snippet', () => {
  it('highlights whole words and the last word as a prefix, diacritics folded', () => {
    const text = 'Meet me at the Café, meeting at nine';
    assert.deepEqual(snippetOf(text, { kind: 'words', words: ['cafe', 'meet'] }), { snippet: text, highlights: [[0, 4], [15, 19], [21, 28]] });
    assert.deepEqual(snippetOf(text, { kind: 'words', words: ['meet', 'cafe'] }), { snippet: text, highlights: [[0, 4], [15, 19]] });
  });

  it('highlights substrings in UTF-16 offsets, astral characters included', () => {
    assert.deepEqual(snippetOf('東京タワーに行きました', { kind: 'substrings', substrings: ['タワー'] }).highlights, [[2, 5]]);
    const emoji = '😀😀 東京 and 東京';
    assert.deepEqual(snippetOf(emoji, { kind: 'substrings', substrings: ['東京'] }).highlights, [[5, 7], [12, 14]]);
    assert.deepEqual(snippetOf('ÄRGER und ärger', { kind: 'substrings', substrings: ['arg'] }).highlights, [[0, 3], [10, 13]]);
  });

  it('cuts a long text around the first hit with … and keeps the highlights on it', () => {
    const text = `${'alpha '.repeat(50)}target word here ${'omega '.repeat(50)}`;
    const { snippet, highlights } = snippetOf(text, { kind: 'words', words: ['target'] });
    assert.ok(snippet.startsWith('…') && snippet.endsWith('…'), snippet);
    assert.ok(snippet.length <= SNIPPET_LENGTH + 2, `${snippet.length}`);
    assert.equal(highlights.length, 1);
    const [start, end] = highlights[0] as [number, number];
    assert.equal(snippet.slice(start, end), 'target');
    assert.ok(start > 20, 'some text before the hit');
  });

  it('never cuts a surrogate pair, and starts at the beginning when there is no hit', () => {
    const text = `x${'😀'.repeat(200)}`;
    const { snippet, highlights } = snippetOf(text, { kind: 'words', words: ['nothing'] });
    assert.deepEqual(highlights, []);
    assert.ok(!snippet.includes('\ufffd'));
    assert.equal(snippet.codePointAt(snippet.length - 3), 0x1f600, 'a whole emoji before the …');
    assert.ok(snippet.endsWith('…'));
    assert.equal([...snippet.slice(1, -1)].every((c) => c === '😀'), true, 'no half of a pair at the cut');
  });

  it('flattens line breaks to spaces without moving offsets', () => {
    assert.deepEqual(snippetOf('one\ntwo', { kind: 'words', words: ['two'] }), { snippet: 'one two', highlights: [[4, 7]] });
  });
});
