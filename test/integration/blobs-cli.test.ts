import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { DiskBlobStore } from '../../src/storage/blobs/disk.js';
import { openDatabase } from '../../src/storage/database.js';
import { openPostgres } from '../../src/storage/postgres/database.js';
import { PostgresAccountsStorage } from '../../src/storage/postgres/accounts.js';
import { PostgresAttachmentStorage } from '../../src/storage/postgres/attachments.js';
import type { AttachmentStorage } from '../../src/storage/ports/attachments.js';
import { SqliteAttachmentStorage } from '../../src/storage/sqlite/attachments.js';
import { Store } from '../../src/storage/store.js';
import { logIn } from '../helpers/http.js';
import { type PgServer, startPostgres } from '../helpers/postgres.js';
import { type CliResult, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

const HOUR = 3_600_000;

function sha(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** A database with a user and a device to own uploads, and the way to run the CLI on it. */
interface Deployment {
  readonly data: string;
  readonly chatd: (command: string[]) => Promise<CliResult>;
  readonly userId: number;
  readonly deviceId: number;
  /** The attachment storage on the same database, for the test to write uploads as the upload path does. */
  openStorage(): Promise<{ storage: AttachmentStorage; close: () => Promise<void> }>;
}

/**
 * `chatd blobs gc` and `chatd stats` over a real data directory, with the
 * built CLI: uploads written by the engine's storage as the upload path writes
 * them, content in the disk blob store under the data directory.
 */
function blobsCliSuite(name: string, deploy: () => Promise<Deployment>): void {
  describe(`chatd blobs gc and chatd stats, ${name}`, { timeout: 300_000 }, () => {
    let data: string;
    let chatd: Deployment['chatd'];
    const content = {
      unsent: new TextEncoder().encode('never sent in a message'),
      gone: new TextEncoder().encode('terminated two days ago'),
      recent: new TextEncoder().encode('finished a moment ago'),
      strayOld: new TextEncoder().encode('left by a crash long ago'),
      strayYoung: new TextEncoder().encode('an upload about to complete'),
    };
    let blobs: DiskBlobStore;
    const blobPath = (hash: string) => join(data, 'blobs', 'sha256', hash.slice(0, 2), hash);
    const age = async (hash: string, ms: number) => {
      const then = new Date(Date.now() - ms);
      await utimes(blobPath(hash), then, then);
    };

    before(async () => {
      const deployment = await deploy();
      data = deployment.data;
      chatd = deployment.chatd;
      const alice = { userId: deployment.userId, deviceId: deployment.deviceId };
      const { storage, close } = await deployment.openStorage();
      blobs = new DiskBlobStore(join(data, 'blobs'));
      const now = Date.now();
      const upload = async (id: string, createdAt: number, bytes: Uint8Array | undefined) => {
        const created = await storage.createUpload(
          { id, userId: alice.userId, deviceId: alice.deviceId, length: bytes?.byteLength ?? 500, name: `${id}.txt`, declaredType: 'text/plain', encrypted: false, keepMetadata: false, durationMs: null, now: createdAt, expiresAt: createdAt + HOUR },
          1 << 30,
        );
        assert.equal(created.kind, 'created');
        await blobs.createStaged(id);
        await blobs.appendStaged(id, 0, once(bytes ?? new Uint8Array(500)), bytes?.byteLength ?? 500);
        if (bytes === undefined) return;
        await blobs.commitStaged(id, sha(bytes));
        const done = await storage.completeUpload(id, { sha256: sha(bytes), size: bytes.byteLength, mime: 'text/plain', width: null, height: null, thumbnail: null }, createdAt);
        assert.equal(done, true);
        // As a finish does once the row names the blob: the staged copy goes.
        await blobs.deleteStaged(id);
      };
      await upload('expired', now - 48 * HOUR, undefined);
      await upload('unsent', now - 48 * HOUR, content.unsent);
      await upload('gone', now - 72 * HOUR, content.gone);
      assert.equal(await storage.deleteUpload('gone', now - 48 * HOUR), 'deleted');
      await upload('recent', now, content.recent);
      for (const name of ['unsent', 'gone'] as const) await age(sha(content[name]), 48 * HOUR);
      await blobs.putBlob(content.strayOld);
      await age(sha(content.strayOld), 48 * HOUR);
      await blobs.putBlob(content.strayYoung);
      await blobs.createStaged('ghost');
      await blobs.appendStaged('ghost', 0, once(new Uint8Array(33)), 33);
      await close();
    });

    it('shows what a pass would remove in a dry run, changing nothing', async () => {
      const before = readdirSync(join(data, 'blobs'), { recursive: true }).sort();
      const dry = await chatd(['blobs', 'gc', '--dry-run', '--json']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.match(dry.stderr, /dry run: nothing is changed/);
      assert.match(dry.stderr, /looking for blobs no upload names/, 'progress goes to stderr');
      assert.deepEqual(JSON.parse(dry.stdout), {
        dry_run: true,
        expired_uploads: { count: 1, bytes: 500 },
        unreferenced_uploads: 1,
        orphaned_blobs: 1,
        deleted_blobs: { count: 1, bytes: content.gone.byteLength },
        stray_staged: { count: 1, bytes: 33 },
        stray_blobs: { count: 1, bytes: content.strayOld.byteLength },
        restored_blobs: 0,
        freed_bytes: 500 + content.gone.byteLength + 33 + content.strayOld.byteLength,
      });
      assert.deepEqual(readdirSync(join(data, 'blobs'), { recursive: true }).sort(), before);
      const stats = JSON.parse((await chatd(['stats', '--json'])).stdout);
      assert.equal(stats.attachments.uploads, 3, 'no upload row went either');
    });

    it('tells the attachment figures in chatd stats: uploads, content, bytes on disk, deduplication, staging', async () => {
      const json = await chatd(['stats', '--json']);
      assert.equal(json.code, 0, json.stderr);
      const stats = JSON.parse(json.stdout);
      assert.deepEqual(stats.attachments, {
        uploads: 3,
        incomplete_uploads: 1,
        blobs: 2,
        uploaded_bytes: content.unsent.byteLength + content.recent.byteLength,
        deduplication_saved_bytes: 0,
        blob_store: {
          directory: join(data, 'blobs'),
          blobs: 5,
          bytes: Object.values(content).reduce((sum, bytes) => sum + bytes.byteLength, 0),
          staged_uploads: 2,
          staged_bytes: 533,
        },
      });
      const text = await chatd(['stats']);
      assert.match(text.stdout, /uploads:\s+3 \(1 unfinished\), \d+ B uploaded, 0 B saved by storing each content once/);
      assert.match(text.stdout, /blobs:\s+2 named by uploads; on disk 5 blobs, \d+ B, and 2 uploads staging 533 B/);
    });

    it('collects: expired and unreferenced uploads, orphans past the grace, stray files; keeps what is young or named', async () => {
      const run = await chatd(['blobs', 'gc']);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /^removed:/);
      assert.match(run.stdout, /expired uploads:\s+1 \(500 B\)/);
      assert.match(run.stdout, /unreferenced uploads:\s+1/);
      assert.match(run.stdout, /newly unused content: 1 \(deleted in 24 h unless an upload names it again\)/);
      assert.equal(existsSync(blobPath(sha(content.gone))), false, 'an orphan past its grace is deleted');
      assert.equal(existsSync(blobPath(sha(content.strayOld))), false, 'old content no upload names is deleted');
      assert.equal(existsSync(blobPath(sha(content.unsent))), true, 'content orphaned just now waits for its grace');
      assert.equal(existsSync(blobPath(sha(content.recent))), true);
      assert.equal(existsSync(blobPath(sha(content.strayYoung))), true, 'young content may be an upload about to complete');
      assert.deepEqual(readdirSync(join(data, 'blobs', 'staging')), []);
      const again = JSON.parse((await chatd(['blobs', 'gc', '--json'])).stdout);
      assert.deepEqual(again, {
        dry_run: false,
        expired_uploads: { count: 0, bytes: 0 },
        unreferenced_uploads: 0,
        orphaned_blobs: 0,
        deleted_blobs: { count: 0, bytes: 0 },
        stray_staged: { count: 0, bytes: 0 },
        stray_blobs: { count: 0, bytes: 0 },
        restored_blobs: 0,
        freed_bytes: 0,
      });
      const stats = JSON.parse((await chatd(['stats', '--json'])).stdout);
      assert.equal(stats.attachments.uploads, 1);
      assert.equal(stats.attachments.blob_store.blobs, 3);
    });

  });
}

blobsCliSuite('on SQLite', async () => {
  const dir = tempDir();
  const data = join(dir, 'data');
  const config = writeConfig(dir, '[attachments]\ngc_grace_hours = 24\n');
  // A database as a server leaves it, with a user and a device.
  const server = await startServer(['--data', data, '--config', config]);
  const added = await runCli(['user', 'add', 'alice', '--data', data, '--config', config], { input: 'wonderland\n' });
  assert.equal(added.code, 0, added.stderr);
  const alice = await logIn(server.url, 'alice', 'wonderland');
  await server.stop();
  return {
    data,
    chatd: (command) => runCli([...command, '--data', data, '--config', config]),
    userId: alice.userId,
    deviceId: alice.deviceId,
    openStorage: async () => {
      const db = openDatabase({ file: join(data, 'chatd.db'), synchronous: 'normal', busyTimeoutMs: 1000 });
      return {
        storage: new SqliteAttachmentStorage(new Store(db)),
        close: async () => {
          db.close();
        },
      };
    },
  };
});

let postgres: PgServer | undefined;
after(() => postgres?.stop());

blobsCliSuite('on PostgreSQL (storage.url), from a machine whose data directory holds only the blobs', async () => {
  postgres ??= await startPostgres();
  const url = await postgres.freshDatabase();
  const dir = tempDir();
  const data = join(dir, 'admin-data');
  const config = writeConfig(dir, '[attachments]\ngc_grace_hours = 24\n');
  const chatd = (command: string[], input?: string) =>
    runCli([...command, '--config', config, '--data', data], { env: { CHATD_STORAGE_URL: url }, ...(input === undefined ? {} : { input }) });
  const migrated = await chatd(['db', 'migrate']);
  assert.equal(migrated.code, 0, migrated.stderr);
  const added = await chatd(['user', 'add', 'alice'], 'wonderland\n');
  assert.equal(added.code, 0, added.stderr);
  const userId = Number(/id (\d+)/.exec(added.stdout)?.[1]);
  const db = await openPostgres(url, { poolSize: 1, migrate: false });
  let deviceId: number;
  try {
    const outcome = await new PostgresAccountsStorage(db).addDevice({ userId, name: 'laptop', platform: 'web', tokenHash: randomBytes(32), now: Date.now() });
    assert.equal(outcome.kind, 'added');
    deviceId = (outcome as { deviceId: number }).deviceId;
  } finally {
    await db.close();
  }
  return {
    data,
    chatd: (command) => chatd(command),
    userId,
    deviceId,
    openStorage: async () => {
      const opened = await openPostgres(url, { poolSize: 2, migrate: false });
      return { storage: new PostgresAttachmentStorage(opened), close: () => opened.close() };
    },
  };
});

describe('chatd blobs gc and chatd stats, when something is wrong', () => {
  it('fails with exit code 1 and one clear line when the blob store cannot be read', async () => {
    const broken = join(tempDir(), 'data');
    const dir = join(broken, '..');
    const brokenConfig = writeConfig(dir, '');
    const server = await startServer(['--data', broken, '--config', brokenConfig]);
    await server.stop();
    mkdirSync(join(broken, 'blobs'), { recursive: true });
    writeFileSync(join(broken, 'blobs', 'sha256'), 'a file where the blob tree should be');
    for (const command of [['blobs', 'gc'], ['stats']]) {
      const failed = await runCli([...command, '--data', broken, '--config', brokenConfig]);
      assert.equal(failed.code, 1, failed.stderr);
      assert.match(failed.stderr, /^chatd: the blob store in .*blobs failed: ENOTDIR: .*; fix its files or permissions and run the command again$/m);
    }
    rmSync(join(broken, 'blobs'), { recursive: true });
  });

  it('refuses a data directory that holds no database, creating nothing', async () => {
    const missing = join(tempDir(), 'nothing-here');
    const refused = await runCli(['blobs', 'gc', '--data', missing]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /no database at .*nothing-here/);
    assert.equal(existsSync(missing), false);
  });
});
