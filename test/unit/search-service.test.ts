import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatError } from '../../src/errors.js';
import { MemoryRateLimitStore } from '../../src/services/limits/memory-rate-limit-store.js';
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

/** A service over `storage` on a clock the test moves, `perMinute` searches a minute (a burst of 10). */
function service_(options: { storage: SearchStorage; enabled: boolean; perMinute?: number; clock?: { now: () => number } }): SearchService {
  const clock = options.clock ?? { now: () => 0 };
  return new SearchService({
    storage: options.storage,
    settings: { enabled: options.enabled, perMinute: options.perMinute ?? 60 },
    limits: new MemoryRateLimitStore(clock as never),
  });
}

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
    const service = service_({ storage, enabled: true });
    const cursor = encodeSearchCursor(20);
    await service.search(principal, { ...request, query: '  café  ', threadId: 4, senderId: 5, after: 1, before: 9, cursor, limit: 50 });
    assert.deepEqual(storage.inputs, [{ userId: 7, query: 'café', threadId: 4, senderId: 5, after: 1, before: 9, cursor, limit: 50 }]);
  });

  it('refuses a blank or too long query, a bad limit or cursor with invalid_field, and asks storage nothing', async () => {
    const storage = recording();
    const service = service_({ storage, enabled: true });
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

  it('looks for no control character: a query of a NUL alone is blank (it made SQLite LIKE match everything)', async () => {
    const storage = recording();
    const service = service_({ storage, enabled: true });
    assert.equal((await refusal(service, { query: '\u0000' })).field, 'query');
    await service.search(principal, { ...request, query: 'a\u0000b\u0007' });
    assert.equal(storage.inputs[0]?.query, 'a b');
  });

  it("keeps each user to search.searches_per_minute (a burst of 10), with rate_limited naming the key and when to try again", async () => {
    const storage = recording();
    let now = 0;
    const service = service_({ storage, enabled: true, perMinute: 60, clock: { now: () => now } });
    for (let i = 0; i < 10; i++) await service.search(principal, request);
    const error = await refusal(service, {});
    assert.equal(error.code, 'rate_limited');
    assert.equal(error.retryAfterSeconds, 1);
    assert.deepEqual(error.details, { limit: 'search.searches_per_minute' });
    const other = { ...principal, user: { id: 8 } } as unknown as Principal;
    await service.search(other, request);
    now += 1000;
    await service.search(principal, request);
    assert.equal(storage.inputs.length, 12, 'another user has a budget of their own; a second later one more search');
    assert.equal((await refusal(service, { query: ' ' })).code, 'invalid_field', 'a bad request is refused before the budget');
  });

  it('answers not_found when search is turned off', async () => {
    const storage = recording();
    const error = await refusal(service_({ storage, enabled: false }), {});
    assert.equal(error.code, 'not_found');
    assert.deepEqual(storage.inputs, []);
  });
});
