import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Command, Option } from 'commander';
import { databaseFile } from '../app.js';
import { type AdminContext, openAdmin } from '../app/admin.js';
import { CONFIG_FILE_ENV, ConfigError, loadConfig } from '../config/load.js';
import type { Config } from '../config/schema.js';
import { StartupError, isChatError } from '../errors.js';
import { DatabaseError, type MigrationProgress } from '../storage/database.js';
import { DataDirectoryLockedError } from '../storage/directory-lock.js';
import { StorageStartError } from '../storage/errors.js';

/** Exit codes: 0 done; 1 the operation failed; 2 the command line or configuration is wrong. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** A failure to report as one line and an exit code, without a stack trace. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_FAILED,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;

export interface DatabaseOptions {
  data?: string;
  config?: string;
}

/** --data and --config: every command that touches the database finds it the way `serve` does. */
export function withDatabaseOptions(command: Command): Command {
  return command
    .addOption(new Option('-d, --data <dir>', 'data directory (default ./chatd-data, or storage.dir / CHATD_STORAGE_DIR)'))
    .addOption(new Option('-c, --config <file>', `config file (or ${CONFIG_FILE_ENV})`));
}

/** Defaults < config file < CHATD_* environment < flags, validated once. */
export function resolveConfig(options: DatabaseOptions, flags: Record<string, string | undefined> = {}): Config {
  return loadConfig({
    file: options.config ?? process.env[CONFIG_FILE_ENV],
    env: process.env,
    flags: { 'storage.dir': options.data, ...flags },
  });
}

/**
 * The database file of an existing data directory. Every command but `serve`
 * works on a database that is there: opening a mistyped --data would create an
 * empty one and show an empty server, with no hint that the path is wrong.
 */
export function requireDatabase(config: Config): string {
  const file = databaseFile(config);
  if (existsSync(file)) return file;
  const dir = dirname(file);
  const why = existsSync(dir) ? `the data directory ${dir} holds no chatd database` : `the data directory ${dir} does not exist`;
  throw new CliError(
    `no database at ${file}: ${why}. Check --data (or storage.dir, CHATD_STORAGE_DIR); only \`chatd serve\` creates a new database, at its first start`,
    EXIT_USAGE,
  );
}

/** Tells on stderr (stdout stays the command's own output) of a schema upgrade, which can take seconds on a large database. */
export const migrationProgress: MigrationProgress = {
  applying: (name) => process.stderr.write(`upgrading the database schema: ${name} (this can take a while on a large database) …\n`),
  applied: (name, ms) => process.stderr.write(`upgraded: ${name} in ${(ms / 1000).toFixed(1)} s\n`),
};

/** Adds a few examples to a command's --help. */
export function examples(command: Command, lines: string[]): Command {
  return command.addHelpText('after', `\nExamples:\n${lines.map((line) => `  $ ${line}`).join('\n')}\n`);
}

/** Turns whatever an action threw into one clear line on stderr and the right exit code. */
export function reportFailure(error: unknown): number {
  if (error instanceof ConfigError) {
    process.stderr.write(`chatd: ${error.message}\n`);
    return EXIT_USAGE;
  }
  if (error instanceof CliError) {
    process.stderr.write(`chatd: ${error.message}\n`);
    return error.exitCode;
  }
  // An engine that cannot be reached at start (storage.url, bus.url): its message names the URL without the password.
  if (
    isChatError(error) ||
    error instanceof DatabaseError ||
    error instanceof StartupError ||
    error instanceof DataDirectoryLockedError ||
    error instanceof StorageStartError ||
    isBusStartError(error)
  ) {
    process.stderr.write(`chatd: ${error.message}\n`);
    return EXIT_FAILED;
  }
  process.stderr.write(`chatd: unexpected error: ${(error as Error)?.stack ?? String(error)}\n`);
  return EXIT_FAILED;
}

/**
 * The Redis bus's start error (src/realtime/redis/errors.ts), known by its
 * name: the command line may not import the realtime layer.
 */
function isBusStartError(error: unknown): error is Error {
  return error instanceof Error && error.name === 'BusStartError';
}

/** Prints rows as aligned columns, or "(none)". */
export function printTable(headers: string[], rows: Array<Array<string | number>>): void {
  if (rows.length === 0) {
    console.log('(none)');
    return;
  }
  const cells = [headers, ...rows.map((row) => row.map(String))];
  const widths = headers.map((_, column) => Math.max(...cells.map((row) => (row[column] ?? '').length)));
  for (const row of cells) console.log(row.map((cell, column) => cell.padEnd(widths[column] ?? 0)).join('  ').trimEnd());
}

export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}

export function formatTime(ms: number | null): string {
  return ms === null ? '-' : new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** "30m", "12h", "7d", "never" → milliseconds (null for never). */
export function parseDuration(text: string): number | null {
  if (text === 'never') return null;
  const match = /^(\d+)([mhd])$/.exec(text);
  if (!match) throw new CliError(`"${text}" is not a duration; use a number with m, h or d (like 30m, 12h, 7d) or "never"`, EXIT_USAGE);
  const unit = { m: 60_000, h: 3_600_000, d: 86_400_000 }[match[2] as 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

export function parsePositiveInteger(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1) throw new CliError(`${what} must be a positive integer, got "${text}"`, EXIT_USAGE);
  return Number(text);
}

/**
 * Runs `work` with the admin services over the configured database, and closes it after:
 * storage.url's PostgreSQL (from any machine that reaches it), else the data directory's
 * SQLite file, which must exist.
 */
export async function withAdmin<T>(options: DatabaseOptions, work: (admin: AdminContext) => Promise<T> | T): Promise<T> {
  const config = resolveConfig(options);
  if (config.storage.url === '') requireDatabase(config);
  const context = await openAdmin(config);
  try {
    return await work(context);
  } finally {
    await context.close();
  }
}
