import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CloseCodes, ErrorCodes } from '../../src/errors.js';

/**
 * The two failure catalogues are documented once, in docs/protocol.md
 * (style.md, practice 5): its tables must say exactly what src/errors.ts does —
 * every code, no more, with the same HTTP status, retry and reconnect.
 */
const DOC = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');

/** The rows of the first table after `heading`, as cells (outer pipes dropped, header and rule skipped). */
function tableAfter(heading: string): string[][] {
  const start = DOC.indexOf(`\n${heading}\n`);
  assert.notEqual(start, -1, `docs/protocol.md has a "${heading}" section`);
  const lines = DOC.slice(start + heading.length + 2).split('\n');
  const first = lines.findIndex((line) => line.startsWith('|'));
  assert.notEqual(first, -1, `"${heading}" has a table`);
  const end = lines.findIndex((line, index) => index > first && !line.startsWith('|'));
  return lines
    .slice(first + 2, end === -1 ? undefined : end)
    .map((line) => line.replace(/^\|/, '').replace(/\|$/, '').split('|').map((cell) => cell.trim()));
}

function yesNo(cell: string | undefined, what: string): boolean {
  assert.ok(cell === 'yes' || cell === 'no', `${what} is "yes" or "no", got ${JSON.stringify(cell)}`);
  return cell === 'yes';
}

describe('docs/protocol.md and src/errors.ts', () => {
  it('the error code table lists every ErrorCode with its HTTP status and whether it is retryable', () => {
    const documented = tableAfter('## Error codes').map(([code, status, retry]) => {
      const name = (code ?? '').replace(/^`|`$/g, '');
      return [name, { status: Number(status), retryable: yesNo(retry, `retry of ${name}`) }] as const;
    });
    assert.deepEqual(
      documented.map(([name]) => name).sort(),
      Object.keys(ErrorCodes).sort(),
      'the same codes, none missing, none extra',
    );
    assert.equal(new Set(documented.map(([name]) => name)).size, documented.length, 'each code once');
    assert.deepEqual(Object.fromEntries(documented), ErrorCodes);
  });

  it('the close code table lists every CloseCode with its number and whether to reconnect', () => {
    const documented = tableAfter('## Close codes').map(([code, name, reconnect]) => {
      return [name ?? '', { code: Number(code), reconnect: yesNo(reconnect, `reconnect of ${name}`) }] as const;
    });
    assert.deepEqual(
      documented.map(([name]) => name).sort(),
      Object.keys(CloseCodes).sort(),
      'the same close reasons, none missing, none extra',
    );
    assert.equal(new Set(documented.map(([name]) => name)).size, documented.length, 'each reason once');
    assert.deepEqual(Object.fromEntries(documented), CloseCodes);
  });
});
