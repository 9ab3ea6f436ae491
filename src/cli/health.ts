import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { type Command, Option } from 'commander';
import type { Config } from '../config/schema.js';
import { LOCK_NOTE_FILE, readLockHolder } from '../storage/directory-lock.js';
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

/**
 * Finds the server as it runs, not as it might be configured: the port and
 * address come from the note the serving process keeps in its data directory
 * (a port 0, a --port flag or a config file the caller does not pass all end
 * up there), the scheme from [tls]. A health probe runs on the server's own
 * machine, so the certificate is not verified: a self-signed one, or one for a
 * public name, must not make a running server look down.
 */
async function health(options: HealthOptions): Promise<void> {
  const timeoutMs = Number(options.timeout);
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1) throw new CliError(`--timeout must be a whole number of milliseconds, 1 or more (got ${options.timeout})`, EXIT_USAGE);
  const config = resolveConfig(options);
  const dir = resolve(config.storage.dir);
  const holder = readLockHolder(dir);
  if (holder === undefined) throw new CliError(`no chatd serves ${dir}: there is no ${LOCK_NOTE_FILE} in it (the server is stopped, or is starting)`);
  if (holder.port === null) throw new CliError(`chatd (pid ${holder.pid}) holds ${dir} but does not listen yet: it is starting`);
  const url = healthUrl(config, holder.host ?? config.server.host, holder.port);
  const answer = await get(url, timeoutMs);
  if (answer.status !== 200) throw new CliError(`${url} answered ${answer.status}: ${answer.body}`);
  console.log(`ok: ${url} answered ${answer.body}`);
}

function healthUrl(config: Config, host: string, port: number): string {
  // A server on every address is reached on this machine's loopback.
  const probe = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  const scheme = config.tls.cert !== '' && config.tls.key !== '' ? 'https' : 'http';
  return `${scheme}://${probe.includes(':') ? `[${probe}]` : probe}:${port}/healthz`;
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const request = send(url, { method: 'GET', rejectUnauthorized: false, timeout: timeoutMs }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolvePromise({ status: response.statusCode ?? 0, body: body.trim() }));
      response.on('error', (error) => reject(new CliError(`${url}: the answer broke off (${error.message})`)));
    });
    let timedOut = false;
    request.on('timeout', () => {
      timedOut = true;
      request.destroy();
    });
    request.on('error', (error: NodeJS.ErrnoException) => {
      if (timedOut) reject(new CliError(`${url} did not answer within ${timeoutMs} ms`));
      else if (error.code === 'ECONNREFUSED') reject(new CliError(`nothing answers at ${url} (connection refused): the server is not running`));
      else reject(new CliError(`cannot reach ${url}: ${error.message}`));
    });
    request.end();
  });
}
