import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The layer rule of style.md, as it is written there:
 *
 *   Imports run one way: cli → app → session → services → storage; the
 *   transport declares the listener it calls and the session implements it
 *   (app.ts wires them), so the transport knows no chat. session may use
 *   protocol; services reach fanout, presence, device links and push only
 *   through the small interfaces they declare. protocol and storage import no
 *   other chatd layer.
 *
 * The table below is derived from that order: a layer of the chain may import
 * the layers below it. Layers beside the chain say where they sit. Anything
 * more is an exception, listed under EXCEPTIONS with why; an entry with a '/'
 * allows one module (its path under src/, without extension), not its whole layer.
 * THROUGH narrows an allowed layer to some of its folders for some importers.
 * A layer is the first folder under src/ (so services/live/, storage/ports/ and
 * storage/sqlite/ belong to services and storage), except transport/http/,
 * the HTTP routes, which is a layer of its own.
 */
const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** The stated chain, top to bottom. */
const CHAIN = ['cli', 'app', 'session', 'services', 'storage'] as const;

/** Leaves any layer may use; they import no chatd module but each other (latency: round-trip windows of the engines; redact-url: URLs shown without their password). */
const SHARED = new Set(['errors', 'clock', 'log', 'latency', 'redact-url']);

/** What the rule itself says beyond the chain, and the layers beside it. */
const STATED: Record<string, readonly string[]> = {
  // The entry point of bin/chatd runs the command line.
  main: ['cli'],
  // The composition root builds and wires every server layer.
  app: ['config', 'crypto', 'metrics', 'protocol', 'push', 'realtime', 'transport', 'http'],
  // "session may use protocol"; "the transport declares the listener it calls and the session implements it".
  session: ['protocol', 'transport/types'],
  // Beside the session (SEAMS-SPEC): the connection and topic registries the session uses,
  // implementing interfaces the services declare (RevocationListener, and services/live/*).
  realtime: ['services'],
  // The push providers and queue worker: behind the PushQueueListener the services declare.
  push: ['services'],
  // The transport knows no chat.
  transport: [],
  // "protocol and storage import no other chatd layer."
  protocol: [],
  storage: [],
  // Libraries the services use (argon2, libsodium checks; the config schema): they import no chatd layer.
  crypto: [],
  config: [],
};

/** Arrows the stated rule does not give, each with why it is allowed. */
const EXCEPTIONS: Record<string, readonly string[]> = {
  // The admin CLI: the terminal chat client is built on the SDK (client); commands read the config schema,
  // open the database without starting a server (storage, services, as `openAdmin` does), test push
  // credentials (push), and print users as the protocol does (protocol's userJson).
  cli: ['client', 'config', 'push', 'protocol'],
  // The socket servers hand requests to the HTTP handler with http's plumbing, which imports no chat layer
  // (web-standard Request in, Response out).
  transport: ['transport/http/incoming', 'transport/http/respond'],
  // The HTTP routes are the session's counterpart for HTTP requests (register, login, push tokens): they call
  // services and read fields with the protocol's readers. They implement the transport's HttpHandler and share
  // its X-Forwarded-For rule (client-address).
  http: ['protocol', 'services', 'transport'],
  // The session applies the same X-Forwarded-For rule (http.trust_proxy) as the HTTP router; the realtime
  // registries are beside it (SEAMS-SPEC: realtime sits beside session).
  session: ['transport/client-address', 'realtime'],
  // The push queue worker reads its queue through storage (its port only: see THROUGH); the providers read
  // their config section.
  push: ['storage', 'config'],
  // The services hash passwords and check keys with crypto (a library: it imports no chatd layer).
  services: ['crypto'],
  // The process's own figures for GET /metrics include the write batcher's counters (a type).
  metrics: ['storage'],
  // The client SDK runs in apps, not in the server: it shares only the protocol's types.
  client: ['protocol'],
};

/**
 * The rule for storage (SEAMS-SPEC, "the storage port"): services, the
 * session and the push worker see storage only through its ports, the
 * interfaces a PostgreSQL implementation will fulfil too: never `Store`, the
 * write batcher, SQL repositories (their rows are SQLite's encoding) or an
 * SQLite implementation. Each entry is a folder prefix under src/. None of them
 * needs storage/database.ts either: opening, migrating and backing up the
 * database is the composition root's (app.ts) and the CLI's, which may import
 * any of storage (app.ts wires the SQLite implementations).
 */
const THROUGH: Record<string, Record<string, readonly string[]>> = {
  services: { storage: ['storage/ports/'] },
  session: { storage: ['storage/ports/'] },
  push: { storage: ['storage/ports/'] },
};

function allowedFor(layer: string): readonly string[] {
  const index = (CHAIN as readonly string[]).indexOf(layer);
  const below = index === -1 ? [] : CHAIN.slice(index + 1);
  return [...below, ...(STATED[layer] ?? []), ...(EXCEPTIONS[layer] ?? [])];
}

function isKnownLayer(layer: string): boolean {
  return (CHAIN as readonly string[]).includes(layer) || layer in STATED || layer in EXCEPTIONS;
}

/** src-relative path without extension, e.g. 'transport/http/router'. */
function moduleOf(file: string): string {
  return relative(SRC, file).replace(/\.(ts|js)$/, '');
}

function layerOf(module: string): string {
  if (module.startsWith('transport/http/')) return 'http';
  return module.split('/')[0] ?? '';
}

/** May a module of layer `from` import module `target`? */
function mayImport(from: string, target: string): boolean {
  const to = layerOf(target);
  if (to === from || SHARED.has(to)) return true;
  const through = THROUGH[from]?.[to];
  if (through && !through.some((prefix) => target.startsWith(prefix))) return false;
  return allowedFor(from).some((entry) => (entry.includes('/') ? target === entry : entry === to));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );
}

describe('layers', () => {
  it('every source file imports only what the layer rule allows', () => {
    const violations: string[] = [];
    for (const file of sourceFiles(SRC)) {
      const from = layerOf(moduleOf(file));
      if (SHARED.has(from)) continue;
      assert.ok(isKnownLayer(from), `${moduleOf(file)} is in no known layer; place it in this test's table`);
      for (const match of readFileSync(file, 'utf8').matchAll(/(?:from |import\()'(\.[^']+)'/g)) {
        const target = moduleOf(resolve(dirname(file), match[1] as string));
        if (!mayImport(from, target)) violations.push(`${moduleOf(file)} (${from}) imports ${match[1]} (${layerOf(target)})`);
      }
    }
    assert.deepEqual(violations, []);
  });

  it('refuses the arrows the rule forbids', () => {
    const forbidden: Array<[string, string]> = [
      ['services', 'session/session'],
      ['services', 'realtime/channels'],
      ['services', 'push/dispatcher'],
      ['services', 'transport/types'],
      ['services', 'protocol/frames'],
      ['storage', 'services/types'],
      ['storage', 'protocol/frames'],
      ['protocol', 'services/types'],
      ['protocol', 'session/wire'],
      ['transport', 'session/session'],
      ['transport', 'services/types'],
      ['transport', 'protocol/frames'],
      ['transport', 'transport/http/accounts'],
      ['session', 'app'],
      ['session', 'transport/uws/server'],
      ['session', 'transport/http/router'],
      ['http', 'session/session'],
      ['realtime', 'session/session'],
      ['client', 'services/types'],
      ['app', 'cli/common'],
      ['services', 'storage/store'],
      ['services', 'storage/sqlite/messaging'],
      ['services', 'storage/repositories/messages'],
      ['services', 'storage/write-batcher'],
      ['session', 'storage/write-batcher'],
      ['session', 'storage/store'],
      ['push', 'storage/repositories/push'],
      ['push', 'storage/sqlite/push'],
    ];
    for (const [from, target] of forbidden) assert.equal(mayImport(from, target), false, `${from} → ${target} must be refused`);
    const allowed: Array<[string, string]> = [
      ['cli', 'app'],
      ['cli', 'storage/database'],
      ['app', 'session/session'],
      ['session', 'services/types'],
      ['session', 'protocol/decode'],
      ['session', 'transport/types'],
      ['services', 'storage/ports/messaging'],
      ['push', 'storage/ports/push'],
      ['session', 'storage/ports/messaging'],
      ['app', 'storage/sqlite/messaging'],
      ['app', 'storage/store'],
      ['cli', 'storage/sqlite/admin'],
      ['services', 'services/live/broker'],
      ['realtime', 'services/live/broker'],
    ];
    for (const [from, target] of allowed) assert.equal(mayImport(from, target), true, `${from} → ${target} is allowed`);
  });

  it('names only modules and layers that exist', () => {
    for (const [from, narrowed] of Object.entries(THROUGH)) {
      assert.ok(isKnownLayer(from), `${from} names no layer`);
      for (const prefix of Object.values(narrowed).flat()) assert.ok(existsSync(join(SRC, prefix)), `${prefix} names no folder`);
    }
    for (const entry of Object.values(STATED).flat().concat(Object.values(EXCEPTIONS).flat())) {
      if (entry.includes('/')) {
        assert.ok(existsSync(join(SRC, `${entry}.ts`)), `${entry} names no module`);
      } else {
        assert.ok(entry === 'http' || existsSync(join(SRC, entry)) || existsSync(join(SRC, `${entry}.ts`)), `${entry} names no layer`);
      }
    }
  });
});
