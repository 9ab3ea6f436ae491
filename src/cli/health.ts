import { existsSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import { LOCK_NOTE_FILE, type LockHolder, readLockHolder } from '../storage/directory-lock.js';
import { CliError, type DatabaseOptions, EXIT_USAGE, examples, resolveConfig, withDatabaseOptions } from './common.js';

interface HealthOptions extends DatabaseOptions {
  timeout: string;
}

export function addHealthCommand(program: Command): void {
  const command = withDatabaseOptions(
    program
      .command('health')
      .description('ask the server that serves this data directory whether it is up (GET /healthz): exit 0 when it answers ok, 1 otherwise'),
  ).addOption(new Option('--timeout <ms>', 'how long to wait for the answer').default('4000'));
  command.action((options: HealthOptions) => health(options));
  examples(command, ['chatd health --data /var/lib/chatd', 'chatd health --config /etc/chatd/config.toml']);
}

/** The most of an answer read: /healthz says a few words. */
const MAX_ANSWER_BYTES = 16 * 1024;

/**
 * Finds the server as it runs, not as it might be configured: the port, the
 * address and whether it serves HTTPS come from the note the serving process
 * keeps in its data directory (a port 0, a --port flag or a config file the
 * caller does not pass all end up there); only the data directory comes from
 * the caller's configuration. A health probe runs on the server's own machine,
 * so the certificate is not verified: a self-signed one, or one for a public
 * name, must not make a running server look down.
 */
async function health(options: HealthOptions): Promise<void> {
  const timeoutMs = Number(options.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CliError(`--timeout must be a whole number of milliseconds, 1 or more (got ${options.timeout})`, EXIT_USAGE);
  const config = resolveConfig(options);
  const dir = resolve(config.storage.dir);
  if (!existsSync(dir)) throw new CliError(`the data directory ${dir} does not exist: give the server's (--data, or storage.dir / CHATD_STORAGE_DIR)`, EXIT_USAGE);
  let holder: LockHolder | undefined;
  try {
    holder = readLockHolder(dir);
  } catch (error) {
    throw new CliError(`cannot read ${join(dir, LOCK_NOTE_FILE)}: ${(error as Error).message}; run chatd health as the server's user`);
  }
  if (holder === undefined) throw new CliError(`no chatd serves ${dir}: there is no ${LOCK_NOTE_FILE} in it (the server is stopped, or is starting)`);
  if (holder.port === null) throw new CliError(`chatd (pid ${holder.pid}) holds ${dir} but does not listen yet: it is starting`);
  // A note from a chatd that did not record the scheme: the configuration's.
  const tls = holder.tls ?? (config.tls.cert !== '' && config.tls.key !== '');
  const url = healthUrl(tls, holder.host ?? config.server.host, holder.port);
  const answer = await get(url, timeoutMs);
  if (answer.status !== 200) throw new CliError(`${url} answered ${answer.status}: ${answer.body}`);
  console.log(`ok: ${url} answered ${answer.body}`);
}

function healthUrl(tls: boolean, host: string, port: number): string {
  // A server on every address is reached on this machine's loopback.
  const probe = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `${tls ? 'https' : 'http'}://${probe.includes(':') ? `[${probe}]` : probe}:${port}/healthz`;
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    // Why the exchange was cut short by this side, if it was: the error Node then reports says less.
    let cut: string | undefined;
    const fail = (error: NodeJS.ErrnoException): void => {
      clearTimeout(deadline);
      if (cut !== undefined) reject(new CliError(`${url} ${cut}`));
      else if (error.code === 'ECONNREFUSED') reject(new CliError(`nothing answers at ${url} (connection refused): the server is not running`));
      else reject(new CliError(`cannot reach ${url}: ${error.message}`));
    };
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const request = send(url, { method: 'GET', rejectUnauthorized: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => {
        body += chunk;
        if (Buffer.byteLength(body) <= MAX_ANSWER_BYTES) return;
        cut = `answered more than ${MAX_ANSWER_BYTES} bytes`;
        request.destroy();
      });
      response.on('error', fail);
      response.on('end', () => {
        clearTimeout(deadline);
        resolvePromise({ status: response.statusCode ?? 0, body: body.trim() });
      });
    });
    // The whole exchange, not only silences: an answer that trickles in must not hold a health check.
    const deadline = setTimeout(() => {
      cut = `did not answer within ${timeoutMs} ms`;
      request.destroy();
    }, timeoutMs);
    request.on('error', fail);
    request.end();
  });
}
