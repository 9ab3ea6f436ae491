import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { generateAccount, generateDevice, rotateDevice } from '../../src/client/device-keys.js';
import type { E2eRecords } from '../../src/client/e2e-records.js';
import { ClientError } from '../../src/client/errors.js';
import { FileStore } from '../../src/client/file-store.js';
import { loadSodium } from '../../src/client/sodium.js';
import { MemoryStore } from '../../src/client/store.js';
import { tempDir } from '../helpers/tmp.js';

/** The encryption fields of the client store (review C1): all kept, all checked, never silently dropped. */

const sodium = await loadSodium();

function records(): E2eRecords {
  const device = rotateDevice(sodium, generateDevice(sodium, 12), Date.now(), 1000);
  const { account, signature } = generateAccount(sodium, 7);
  const other = generateDevice(sodium, 20);
  return {
    deviceSecrets: device,
    account,
    knownDevices: { '20': { user_id: 9, sign_key: other.sign_public, enc_key: other.enc_public, counter: 1, fingerprint: '1 2 3', account_signature: signature } },
    accounts: { '9': { account_key: account.account_key, signature, verified: true, pending_change: { account_key: account.account_key, signature } } },
    e2eThreads: { '5': 'required', '6': 'encrypted' },
    historyKeys: { '5': { '3': sodium.to_base64(sodium.randombytes_buf(32), 1) } },
    grants: { 'g-1': { direction: 'outgoing', device_id: 13, next_part: 2 } },
    deviceMessagesSeen: { [sodium.to_base64(sodium.randombytes_buf(16), 1)]: 1_700_000_000_000 },
    owedGrants: [13, 14],
  };
}

async function writeAll(store: FileStore | MemoryStore, all: E2eRecords): Promise<void> {
  for (const field of Object.keys(all) as Array<keyof E2eRecords>) await store.setE2e(field, all[field] as never);
}

describe('client store: encryption fields', () => {
  it('FileStore keeps every field across a reload, and the next write keeps them on disk', async () => {
    const path = join(tempDir(), 'store.json');
    const first = new FileStore(path);
    await first.load();
    const all = records();
    await writeAll(first, all);
    const second = new FileStore(path);
    assert.deepEqual((await second.load()).e2e, all);
    await second.setCursor(3, 5);
    assert.deepEqual((await new FileStore(path).load()).e2e, all, 'a later write does not erase them');
  });

  it('reset (a new server epoch) keeps the device\'s keys and pins', async () => {
    const store = new MemoryStore();
    const all = records();
    await writeAll(store, all);
    await store.setCursor(1, 2);
    await store.reset();
    const state = await store.load();
    assert.equal(state.cursors.size, 0);
    assert.deepEqual(state.e2e, all);
  });

  it('a malformed secret makes load throw store_corrupt and leaves the file as it was', async () => {
    const path = join(tempDir(), 'store.json');
    const store = new FileStore(path);
    await store.load();
    await writeAll(store, records());
    const text = readFileSync(path, 'utf8');
    const broken = JSON.parse(text) as Record<string, { sign_secret?: string }>;
    broken.deviceSecrets!.sign_secret = 'not base64!';
    writeFileSync(path, JSON.stringify(broken));
    await assert.rejects(new FileStore(path).load(), (error: ClientError) => error.code === 'store_corrupt' && /deviceSecrets/.test(error.message));
    assert.equal(readFileSync(path, 'utf8'), JSON.stringify(broken));
  });

  it('each malformed field is named; a store that is not JSON is store_corrupt too', async () => {
    const cases: Array<[string, unknown]> = [
      ['account', { user_id: 7, account_key: 'short' }],
      ['knownDevices', { x: {} }],
      ['accounts', { '9': { account_key: 'AAAA', verified: 'yes' } }],
      ['e2eThreads', { '5': 'sometimes' }],
      ['historyKeys', { '5': { '3': 42 } }],
      ['deviceMessagesSeen', { 'not-an-id': 1 }],
      ['owedGrants', [0]],
      ['deviceSecrets', { ...records().deviceSecrets, counter: 0 }],
    ];
    for (const [field, value] of cases) {
      const path = join(tempDir(), 'store.json');
      writeFileSync(path, JSON.stringify({ cursors: {}, outbox: [], [field]: value }));
      await assert.rejects(new FileStore(path).load(), (error: ClientError) => error.code === 'store_corrupt' && error.message.includes(field), field);
    }
    const path = join(tempDir(), 'store.json');
    writeFileSync(path, '{"cursors": {}, "outbox": [');
    await assert.rejects(new FileStore(path).load(), (error: ClientError) => error.code === 'store_corrupt');
  });
});
