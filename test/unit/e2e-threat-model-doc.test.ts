import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

/**
 * docs/e2e.md's threat model names, for each row, the test that shows it: a
 * renamed or removed test would leave a row that proves nothing. Every
 * `file.test.ts` "name" pair in the table must be a test of that file ("…"
 * stands for words left out, at the end or inside).
 */

const root = new URL('../../', import.meta.url);
const doc = readFileSync(new URL('docs/e2e.md', root), 'utf8');
const table = doc.slice(doc.indexOf('### What each can and cannot do'), doc.indexOf('### The account-key model'));

function citations(): Array<{ file: string; name: string }> {
  const found: Array<{ file: string; name: string }> = [];
  for (const row of table.split('\n').filter((line) => line.startsWith('| ') && !line.startsWith('| adversary') && !line.startsWith('|---'))) {
    const shownBy = row.split(' | ').at(-1) ?? '';
    let file: string | undefined;
    for (const token of shownBy.matchAll(/`([^`]+\.test\.ts)`|"([^"]+)"/g)) {
      if (token[1] !== undefined) file = token[1].includes('/') ? token[1] : `test/integration/${token[1]}`;
      else if (file !== undefined) found.push({ file, name: (token[2] as string).replace(/\s*…$/, '') });
    }
  }
  return found;
}

describe('docs/e2e.md threat model', () => {
  it('names only tests that exist, in the files it names', () => {
    const cited = citations();
    assert.ok(cited.length >= 20, `found only ${cited.length} cited tests: the table's format changed?`);
    const missing = cited.filter(({ file, name }) => {
      const path = new URL(file, root);
      if (!existsSync(path)) return true;
      // Test names in the source may escape quotes; compare without the escapes.
      const source = readFileSync(path, 'utf8').replace(/\\(['"`])/g, '$1');
      // "…" inside a name stands for words left out.
      const pattern = name.split('…').map((part) => part.trim().replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?');
      return !new RegExp(`it\\(['"\`]${pattern}`).test(source);
    });
    assert.deepEqual(missing, []);
  });
});
