import { readFileSync } from 'node:fs';
import { TomlError, parse as parseToml } from 'smol-toml';
import { urlProblem } from './engine-urls.js';
import { parseHostPort } from './address.js';
import { type Config, type KeySpec, describeAllowed, envName, sections } from './schema.js';

/** Raised when the configuration cannot be used; lists every problem at once. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** The environment variable that names a config file when --config is not given. */
export const CONFIG_FILE_ENV = 'CHATD_CONFIG';

export interface ConfigSources {
  /** Path of a TOML file, or undefined for none. */
  readonly file?: string | undefined;
  /** Usually process.env; only CHATD_* variables are read. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values from command-line flags, keyed "section.key", as typed by the user. */
  readonly flags?: Readonly<Record<string, string | undefined>>;
}

type Raw = unknown;

/**
 * Builds the configuration: defaults < file < environment < flags.
 * Validates everything once; an unknown key, a wrong type or a bad value in
 * any source is a ConfigError naming the key, the source and what is allowed.
 */
export function loadConfig(sources: ConfigSources): Config {
  const problems: string[] = [];
  const fileValues = sources.file === undefined ? {} : readConfigFile(sources.file, problems);
  const envValues = readEnv(sources.env ?? {}, problems);
  const result: Record<string, Record<string, unknown>> = {};

  for (const section of sections()) {
    const values: Record<string, unknown> = {};
    const fromFile = fileValues[section.name] ?? {};
    for (const [key, spec] of section.keys) {
      const path = `${section.name}.${key}`;
      const flag = sources.flags?.[path];
      const env = envValues.get(path);
      let value: unknown = spec.default;
      if (flag !== undefined) {
        value = coerce(spec, flag, `${path} (flag ${spec.flag ?? ''})`.replace(' ()', ''), true, problems);
      } else if (env !== undefined) {
        value = coerce(spec, env, `${path} (from ${envName(section.name, key)})`, true, problems);
      } else if (key in fromFile) {
        value = coerce(spec, fromFile[key], `${path} (in ${sources.file})`, false, problems);
      }
      values[key] = value;
    }
    result[section.name] = values;
  }

  const config = result as unknown as Config;
  if (problems.length === 0) checkRelations(config, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** Reads and structurally checks a TOML file: known sections, known keys. */
function readConfigFile(file: string, problems: string[]): Record<string, Record<string, Raw>> {
  let source: string;
  try {
    source = readFileSync(file, 'utf8');
  } catch (error) {
    problems.push(`cannot read config file ${file}: ${readFailure(error as NodeJS.ErrnoException)}`);
    return {};
  }
  let document: Record<string, Raw>;
  try {
    document = parseToml(source) as Record<string, Raw>;
  } catch (error) {
    problems.push(describeTomlError(file, error, source));
    return {};
  }
  const known = new Map(sections().map((s) => [s.name, new Set(s.keys.map(([k]) => k))]));
  const out: Record<string, Record<string, Raw>> = {};
  for (const [name, value] of Object.entries(document)) {
    const keys = known.get(name);
    if (keys === undefined) {
      const near = closest(name, [...known.keys()]);
      problems.push(`${file}: unknown ${isTable(value) ? 'section' : 'key'} "${name}"${near ? ` (did you mean [${near}]?)` : ''}; known sections: ${[...known.keys()].join(', ')}`);
      continue;
    }
    if (!isTable(value)) {
      problems.push(`${file}: "${name}" must be a section ([${name}]), not a value`);
      continue;
    }
    for (const key of Object.keys(value)) {
      if (keys.has(key)) continue;
      const near = closest(key, [...keys]);
      problems.push(`${file}: unknown key ${name}.${key}${near ? ` (did you mean ${name}.${near}?)` : ''}; keys in [${name}]: ${[...keys].join(', ')}`);
    }
    out[name] = value;
  }
  return out;
}

/**
 * "FILE, line 5, column 16: not valid TOML: invalid value", then the parser's excerpt with a
 * caret under the column, indented to sit under the problem in ConfigError's list.
 */
function describeTomlError(file: string, error: unknown, source: string): string {
  if (!(error instanceof TomlError)) return `${file} is not valid TOML: ${String(error)}`;
  // smol-toml's message is "Invalid TOML document: <what>", a blank line, then its code block.
  const what = error.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'invalid';
  const excerpt = error.codeblock
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => `      ${maskStrings(line)}`)
    .join('\n');
  return `${file}, line ${error.line}, column ${error.column}: not valid TOML: ${what}${bareValueHint(source.split('\n'), error.line - 1)}${excerpt ? `\n${excerpt}` : ''}`;
}

/**
 * `host = 127.0.0.1`, `level = info`, `enabled = yes`: a value written bare, the
 * usual slip (smol-toml then speaks of numeric literals or invalid values). The
 * hint follows the key's type in the schema: text is quoted, a switch is true or
 * false, a number is digits. The value is not repeated: the line may hold a secret.
 */
function bareValueHint(lines: readonly string[], index: number): string {
  const match = /^\s*([A-Za-z0-9_-]+)\s*=\s*([^\s"'[{#][^#]*?)\s*(#.*)?$/.exec(lines[index] ?? '');
  // A value that begins as a number or a boolean went wrong some other way.
  if (!match || /^(true|false|[+-]?\d[\d_]*(\.\d+)?)(\s|$)/.test(match[2] as string)) return '';
  const key = match[1] as string;
  let section: string | undefined;
  for (let at = index - 1; at >= 0 && section === undefined; at--) section = /^\s*\[\s*([A-Za-z0-9_-]+)\s*\]/.exec(lines[at] ?? '')?.[1];
  const spec = sections().find((known) => known.name === section)?.keys.find(([name]) => name === key)?.[1];
  if (spec?.type === 'boolean') return ` (${section}.${key} is true or false)`;
  if (spec?.type === 'integer') return ` (${section}.${key} is a whole number)`;
  return ` (text is quoted in TOML: ${key} = "…")`;
}

/** The name nearest `word` within two edits, for a "did you mean"; undefined when none is. */
function closest(word: string, names: readonly string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of names) {
    const distance = editDistance(word, name);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** Why a config file could not be read, in words. */
function readFailure(error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return 'no such file';
  if (error.code === 'EACCES') return 'permission denied (run chatd as a user who may read it)';
  if (error.code === 'EISDIR') return 'it is a directory, not a file';
  return error.code ?? String(error);
}

/**
 * The excerpt goes to stderr and the journal, and a line near the error may hold a
 * secret (metrics.token): quoted text becomes asterisks of the same length, so the
 * caret still points at the column.
 */
function maskStrings(line: string): string {
  return line.replace(/"(?:[^"\\]|\\.)*"|'[^']*'/g, (quoted) => `${quoted[0]}${'*'.repeat(quoted.length - 2)}${quoted[0]}`);
}

/** CHATD_<SECTION>_<KEY> variables; any other CHATD_* name is a typo and rejected. */
function readEnv(env: Readonly<Record<string, string | undefined>>, problems: string[]): Map<string, string> {
  const byName = new Map<string, string>();
  for (const section of sections()) {
    for (const [key] of section.keys) byName.set(envName(section.name, key), `${section.name}.${key}`);
  }
  const values = new Map<string, string>();
  for (const [name, value] of Object.entries(env)) {
    if (!name.startsWith('CHATD_') || name === CONFIG_FILE_ENV || value === undefined) continue;
    const path = byName.get(name);
    if (path === undefined) {
      problems.push(`unknown environment variable ${name}; chatd reads CHATD_<SECTION>_<KEY> (see config.example.toml) and ${CONFIG_FILE_ENV}`);
      continue;
    }
    values.set(path, value);
  }
  return values;
}

function coerce(spec: KeySpec, raw: Raw, where: string, fromText: boolean, problems: string[]): unknown {
  const fail = (): unknown => {
    problems.push(`${where} must be ${describeAllowed(spec)}, got ${JSON.stringify(raw)}`);
    return spec.default;
  };
  switch (spec.type) {
    case 'string':
      if (typeof raw !== 'string' || (spec.nonEmpty && raw.trim() === '')) return fail();
      return raw;
    case 'integer': {
      const value = fromText && typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : raw;
      if (typeof value !== 'number' || !Number.isInteger(value) || value < spec.min || value > spec.max) return fail();
      return value;
    }
    case 'boolean': {
      if (typeof raw === 'boolean') return raw;
      if (fromText && raw === 'true') return true;
      if (fromText && raw === 'false') return false;
      return fail();
    }
    case 'enum':
      if (typeof raw !== 'string' || !spec.values.includes(raw)) return fail();
      return raw;
  }
}

/** Rules that involve more than one key. */
function checkRelations(config: Config, problems: string[]): void {
  const ws = config.websocket;
  if (ws.heartbeat_timeout_ms <= ws.heartbeat_interval_ms) {
    problems.push(
      `websocket.heartbeat_timeout_ms (${ws.heartbeat_timeout_ms}) must be greater than websocket.heartbeat_interval_ms (${ws.heartbeat_interval_ms})`,
    );
  }
  // A connection must be able to hold a couple of the largest frames queued, or every big message would cut its readers.
  if (ws.max_buffered_bytes < 2 * ws.max_frame_bytes) {
    problems.push(
      `websocket.max_buffered_bytes (${ws.max_buffered_bytes}) must be at least twice websocket.max_frame_bytes (${ws.max_frame_bytes})`,
    );
  }
  checkServing(config, problems);
  checkEngines(config, problems);
  const messages = config.messages;
  // A send frame carries the body plus its type, ids and thread id: up to about 250 bytes, compactly encoded with ASCII ids.
  if (messages.max_body_bytes + 512 > ws.max_frame_bytes) {
    problems.push(
      `messages.max_body_bytes (${messages.max_body_bytes}) must be at least 512 less than websocket.max_frame_bytes (${ws.max_frame_bytes}), so that a send frame of the largest body fits: ` +
        `lower messages.max_body_bytes to ${Math.max(0, ws.max_frame_bytes - 512)} or raise websocket.max_frame_bytes to ${messages.max_body_bytes + 512}`,
    );
  }
}

/** TLS and the /metrics guards: half a pair, a guessable token or an unusable address would fail later or quietly. */
function checkServing(config: Config, problems: string[]): void {
  const { cert, key } = config.tls;
  if ((cert === '') !== (key === '')) {
    problems.push(`tls.cert and tls.key go together: ${cert === '' ? 'tls.key' : 'tls.cert'} is set, ${cert === '' ? 'tls.cert' : 'tls.key'} is empty`);
  }
  const metrics = config.metrics;
  if (metrics.token !== '' && metrics.token.length < 16) {
    problems.push(`metrics.token must be at least 16 characters (it has ${metrics.token.length}); make one with \`openssl rand -hex 32\``);
  }
  if (metrics.listen !== '') {
    const address = parseHostPort(metrics.listen);
    if ('error' in address) problems.push(`metrics.listen ${address.error}, got ${JSON.stringify(metrics.listen)}`);
  }
  if (!metrics.enabled && (metrics.token !== '' || metrics.listen !== '')) {
    problems.push(`metrics.${metrics.token !== '' ? 'token' : 'listen'} is set but metrics.enabled is false: set enabled = true to serve /metrics`);
  }
}

/**
 * storage.url and bus.url: empty, or a URL of the one engine each key selects. A URL
 * of another scheme (mysql://, a Redis URL in storage.url) would otherwise fail late
 * with the driver's own words, or not at all. Shown without its password.
 */
function checkEngines(config: Config, problems: string[]): void {
  const storage = config.storage.url;
  if (storage !== '') {
    const why = urlProblem(storage, ['postgres:', 'postgresql:']);
    if (why) problems.push(`storage.url must be empty (SQLite in storage.dir) or a postgres:// URL such as "postgres://chatd:PASSWORD@db:5432/chatd": ${why}`);
  }
  const bus = config.bus.url;
  if (bus !== '') {
    const why = urlProblem(bus, ['redis:', 'rediss:']);
    if (why) problems.push(`bus.url must be empty (one node) or a redis:// URL such as "redis://redis:6379": ${why}`);
    // Nodes that share a bus share thread ids and device ids: each on a SQLite file of its own, they would mean different things.
    else if (storage === '') problems.push('bus.url is set but storage.url is empty: the nodes that share a bus must share one PostgreSQL database (set storage.url)');
  }
}

function isTable(value: Raw): value is Record<string, Raw> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}
