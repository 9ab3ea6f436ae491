import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { databaseFile, openConfiguredDatabase } from '../app.js';
import { systemClock } from '../clock.js';
import type { Config } from '../config/schema.js';
import { adminAuditLog } from '../services/admin-audit-file.js';
import { DiskBlobStore, diskBlobStore } from '../storage/blobs/disk.js';
import type { AdminService } from '../services/admin.js';
import { databaseSize, readEpoch, schemaVersion } from '../storage/database.js';
import { StorageStartError } from '../storage/errors.js';
import { type PgDatabase, openPostgres } from '../storage/postgres/database.js';
import { PostgresAdminStorage } from '../storage/postgres/admin.js';
import { PostgresAttachmentStorage } from '../storage/postgres/attachments.js';
import { postgresDatabaseBytes, postgresSchemaVersion } from '../storage/postgres/figures.js';
import { loadPostgresMigrations } from '../storage/postgres/migrate.js';
import type { AccountsStorage } from '../storage/ports/accounts.js';
import type { AdminStorage } from '../storage/ports/admin.js';
import type { AttachmentStorage } from '../storage/ports/attachments.js';
import { SqliteAdminStorage } from '../storage/sqlite/admin.js';
import { SqliteAttachmentStorage } from '../storage/sqlite/attachments.js';
import { Store } from '../storage/store.js';
import { buildCore } from './core.js';

/** What `chatd stats` tells of the database itself, whichever engine holds it. */
export interface DatabaseFigures {
  readonly engine: 'sqlite' | 'postgres';
  /** The SQLite file, or the PostgreSQL URL without its password. */
  readonly location: string;
  /** On disk: the SQLite file and its WAL; PostgreSQL's pg_database_size. */
  readonly bytes: number;
  readonly schemaVersion: number;
  readonly epoch: string;
}

/** What the admin CLI works with: the services over the configured database (SQLite or PostgreSQL), no sockets. */
export interface AdminContext {
  readonly admin: AdminService;
  /** For `chatd blobs gc` and `chatd stats`: the uploads' rows, and the bytes in storage.dir's blob store. */
  readonly attachments: AttachmentStorage;
  readonly blobs: DiskBlobStore;
  figures(): Promise<DatabaseFigures>;
  /** Resolves once every change is committed and the database is closed. */
  close(): Promise<void>;
}

/**
 * The admin services over the database the config names: storage.url's
 * PostgreSQL when it is set, else the SQLite file in storage.dir. Neither
 * schema is upgraded here: nodes of an older version may be using it (see
 * openPostgresAdmin). A PostgreSQL that cannot be reached, or whose schema is
 * unusable, throws a StorageStartError naming the URL without its password.
 */
export async function openAdmin(config: Config): Promise<AdminContext> {
  return config.storage.url === '' ? openSqliteAdmin(config) : openPostgresAdmin(config);
}

function openSqliteAdmin(config: Config): AdminContext {
  const db = openConfiguredDatabase(config, { upgrade: false });
  const file = databaseFile(config);
  let admin: AdminService;
  let attachments: AttachmentStorage;
  try {
    const store = new Store(db);
    // One object serves both: the admin's storage is the accounts' storage plus the admin's own.
    admin = adminService(config, new SqliteAdminStorage(store));
    attachments = new SqliteAttachmentStorage(store);
  } catch (error) {
    db.close();
    throw error;
  }
  return {
    admin,
    attachments,
    blobs: diskBlobStore(config.storage.dir),
    figures: async () => ({ engine: 'sqlite', location: file, bytes: databaseSize(file), schemaVersion: schemaVersion(db), epoch: readEpoch(db) }),
    close: async () => {
      db.close();
    },
  };
}

/**
 * With storage.url. The schema must be exactly this chatd's: an older one is
 * refused rather than migrated, because nodes of the older version may run on
 * it and would then refuse to start again (the nodes upgrade it, the first of
 * the new version to start, or `chatd db migrate`); a newer one is refused as
 * the nodes refuse it. An empty database is refused too, as a missing SQLite
 * file is: a mistyped database name must not get chatd's tables and show an
 * empty server (a node creates them at its first start, or `chatd db copy`).
 */
async function openPostgresAdmin(config: Config): Promise<AdminContext> {
  // Two connections: the write batch holds one while a read may need the other.
  const db = await openPostgres(config.storage.url, { poolSize: 2, migrate: false });
  try {
    await checkSchema(db);
    const admin = adminService(config, new PostgresAdminStorage(db), { createDirectory: true });
    return {
      admin,
      attachments: new PostgresAttachmentStorage(db),
      // On a machine that is not a node, storage.dir must be (or mount) the volume the nodes share for blobs.
      blobs: diskBlobStore(config.storage.dir),
      figures: async () => {
        const [bytes, version, epoch] = await Promise.all([postgresDatabaseBytes(db.read), postgresSchemaVersion(db.read), db.epoch()]);
        return { engine: 'postgres', location: db.label, bytes, schemaVersion: version, epoch };
      },
      close: () => db.close(),
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}

async function checkSchema(db: PgDatabase): Promise<void> {
  const version = await postgresSchemaVersion(db.read);
  const latest = loadPostgresMigrations().reduce((max, migration) => Math.max(max, migration.version), 0);
  if (version === 0) {
    throw new StorageStartError(
      `the PostgreSQL database at ${db.label} holds no chatd tables: check storage.url (CHATD_STORAGE_URL); ` +
        'a node creates them at its first start (or `chatd db migrate`, or `chatd db copy` from SQLite)',
    );
  }
  if (version < latest) {
    throw new StorageStartError(
      `the PostgreSQL schema at ${db.label} is version ${version} and this chatd needs ${latest}: ` +
        'upgrade the nodes (the first of the new version to start migrates it) or run `chatd db migrate`; admin commands do not change the schema under running nodes',
    );
  }
  if (version > latest) {
    throw new StorageStartError(
      `the PostgreSQL schema at ${db.label} is version ${version}, newer than this chatd knows (${latest}): run the admin commands with the chatd version the nodes run`,
    );
  }
}

/**
 * The admin service as the CLI runs it. Live connections belong to the nodes:
 * they read the account events the admin's units record (the revocation
 * watcher polls them), so revocations need no listener here. Changes are
 * audited to audit.log in storage.dir, on the machine the command runs on;
 * with PostgreSQL that machine may hold no data directory yet, and it is made.
 */
function adminService(config: Config, storage: AccountsStorage & AdminStorage, options: { createDirectory?: boolean } = {}): AdminService {
  const dir = resolve(config.storage.dir);
  if (options.createDirectory === true && !existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  return buildCore(config, { accounts: storage, admin: storage }, systemClock, { revoked: () => {} }, adminAuditLog(dir)).admin;
}
