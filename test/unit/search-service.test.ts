import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { type SearchRequest, SearchService } from '../../src/services/search.js';
import type { Principal } from '../../src/services/types.js';
import { type SearchInput, type SearchStorage, encodeSearchCursor } from '../../src/storage/ports/search.js';

/** A storage that records what the service asked. */
function recording(): SearchStorage & { inputs: SearchInput[] } {
  const inputs: SearchInput[] = [];
  return {
    inputs,
    search: async (input) => {
      inputs.push(input);
      return { results: [], nextCursor: null };
    },
    check: async () => ({ ok: true, searchable: 0, indexed: 0, problems: [] }),
    rebuild: async () => ({ indexed: 0 }),
  };
}

const principal = { user: { id: 7 }, deviceId: 3 } as unknown as Principal;
const request: SearchRequest = { query: 'hello', threadId: undefined, senderId: undefined, after: undefined, before: undefined, cursor: undefined, limit: 20 };

async function refusal(service: SearchService, changes: Partial<SearchRequest>): Promise<ChatError> {
  const error = await service.search(principal, { ...request, ...changes }).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  assert.ok(error instanceof ChatError, 'refused');
  return error;
}

describe('SearchService', () => {
  it('asks storage for the user, the trimmed query, the filters and the page', async () => {
    const storage = recording();
    const service = new SearchService({ storage, settings: { enabled: true } });
    const cursor = encodeSearchCursor(20);
    await service.search(principal, { ...request, query: '  café  ', threadId: 4, senderId: 5, after: 1, before: 9, cursor, limit: 50 });
    assert.deepEqual(storage.inputs, [{ userId: 7, query: 'café', threadId: 4, senderId: 5, after: 1, before: 9, cursor, limit: 50 }]);
  });

  it('refuses a blank or too long query, a bad limit or cursor with invalid_field, and asks storage nothing', async () => {
    const storage = recording();
    const service = new SearchService({ storage, settings: { enabled: true } });
    for (const [changes, field] of [
      [{ query: '   ' }, 'query'],
      [{ query: 'x'.repeat(201) }, 'query'],
      [{ limit: 0 }, 'limit'],
      [{ limit: 51 }, 'limit'],
      [{ cursor: 'bogus' }, 'cursor'],
      [{ cursor: encodeSearchCursor(1000) }, 'cursor'],
    ] as const) {
      const error = await refusal(service, changes);
      assert.equal(error.code, 'invalid_field');
      assert.equal(error.field, field);
    }
    assert.equal((await service.search(principal, { ...request, query: `  ${'é'.repeat(200)}  ` })).results.length, 0, '200 characters once trimmed');
    assert.equal(storage.inputs.length, 1);
  });

  it('answers not_found when search is turned off', async () => {
    const storage = recording();
    const error = await refusal(new SearchService({ storage, settings: { enabled: false } }), {});
    assert.equal(error.code, 'not_found');
    assert.deepEqual(storage.inputs, []);
  });
});
