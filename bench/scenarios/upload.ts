import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { signUp } from '../../test/helpers/http.js';
import { tempDir } from '../../test/helpers/tmp.js';
import { processCpuMs, processRssBytes } from '../lib/machine.js';
import { startPinnedListener } from '../lib/pinned.js';
import type { Context, Result, Scenario } from '../lib/scenario.js';
import { startBenchServer } from '../lib/server.js';

const MIB = 1024 * 1024;
/** What the client writes per call: one buffer, sent again and again (the bytes' content does not matter here). */
const CHUNK = Buffer.alloc(MIB, 0x5a);

/** The server's RSS every 50 ms while `work` runs: before, and the peak. */
async function sampleRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; before: number; peak: number }> {
  const before = processRssBytes(pid);
  let peak = before;
  const timer = setInterval(() => {
    peak = Math.max(peak, processRssBytes(pid));
  }, 50);
  try {
    const result = await work();
    peak = Math.max(peak, processRssBytes(pid));
    return { result, before, peak };
  } finally {
    clearInterval(timer);
  }
}

/**
 * uWS (this build) drops a request whose Content-Length has 10 digits (1,000,000,000 bytes or more)
 * before any handler sees it; a chunked body of any size passes.
 */
const UWS_MAX_CONTENT_LENGTH = 999_999_999;

/** Sends `total` bytes as one request body with node:http (chunked, or with a Content-Length), keeping to backpressure; resolves with the status, headers and text of the answer. */
async function sendBody(url: string, method: string, total: number, headers: Record<string, string>, chunked = false): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const request = httpRequest(url, { method, agent: false, headers: chunked ? headers : { ...headers, 'content-length': String(total) } });
  const answered = once(request, 'response') as Promise<[import('node:http').IncomingMessage]>;
  request.on('error', () => {});
  for (let sent = 0; sent < total; sent += CHUNK.byteLength) {
    const chunk = total - sent >= CHUNK.byteLength ? CHUNK : CHUNK.subarray(0, total - sent);
    if (!request.write(chunk)) await Promise.race([once(request, 'drain'), answered]);
  }
  request.end();
  const [response] = await answered;
  let text = '';
  for await (const chunk of response) text += (chunk as Buffer).toString('utf8');
  return { status: response.statusCode ?? 0, headers: response.headers, text };
}

function row(setting: string, bytes: number, ms: number, rss?: { before: number; peak: number }, serverCpu = 0, note?: string): Result {
  return {
    scenario: 'upload',
    setting,
    figures: {
      'MB/s': bytes / MIB / (ms / 1000),
      'time ms': ms,
      ...(rss ? { 'server RSS before MB': rss.before / MIB, 'server RSS peak MB': rss.peak / MIB } : {}),
    },
    serverCpu,
    generatorCpu: 0,
    valid: true,
    ...(note ? { note } : {}),
  };
}

/**
 * fsync through a second descriptor: on Linux it flushes the file, whichever descriptor wrote it.
 * (A FileHandle's own stream with autoClose off keeps the handle: its close() then never settles, Node 20.)
 */
async function fsyncFile(path: string): Promise<void> {
  const file = await open(path, 'r+');
  try {
    await file.sync();
  } finally {
    await file.close();
  }
}

/** The disk's own speed, the ceiling of any upload: `total` bytes through an fs write stream, then fsync. */
async function diskWrite(dir: string, total: number): Promise<Result> {
  const path = join(dir, 'disk-write');
  const started = performance.now();
  const stream = createWriteStream(path);
  for (let written = 0; written < total; written += CHUNK.byteLength) {
    if (!stream.write(CHUNK)) await once(stream, 'drain');
  }
  stream.end();
  await once(stream, 'close');
  await fsyncFile(path);
  const ms = performance.now() - started;
  await rm(path);
  return row('disk: fs write stream, 1 MiB writes, then fsync', total, ms);
}

/** The transport alone (lib/upload-child.ts): a streamed route that writes the body to a file and fsyncs it. */
async function transportUpload(context: Context, kind: 'uws' | 'node', dir: string, total: number): Promise<Result> {
  const { child, url } = await startPinnedListener(context, './upload-child.ts', [kind, dir], `the ${kind} upload child`);
  try {
    const port = new URL(url).port;
    const pid = child.pid as number;
    const chunked = total > UWS_MAX_CONTENT_LENGTH;
    const cpu = processCpuMs(pid);
    const started = performance.now();
    const { result, before, peak } = await sampleRss(pid, () => sendBody(`http://127.0.0.1:${port}/upload`, 'POST', total, { 'content-type': 'application/octet-stream' }, chunked));
    const ms = performance.now() - started;
    if (result.status !== 200 || (JSON.parse(result.text) as { bytes: number }).bytes !== total) throw new Error(`the ${kind} upload child answered ${result.status} ${result.text}`);
    return row(`transport ${kind}: one streamed POST${chunked ? ' (chunked)' : ''} to a file, fsync`, total, ms, { before, peak }, (processCpuMs(pid) - cpu) / ms);
  } finally {
    child.kill('SIGKILL');
  }
}

/**
 * chatd's upload over tus: POST /v1/uploads (Upload-Length), then the whole file in PATCHes of
 * `patchBytes` (the SDK sends 4 MiB by default); the last PATCH runs the finish pipeline (hash,
 * sniff) before answering, and is timed with the rest.
 */
async function tusUpload(context: Context, total: number, patchBytes: number): Promise<Result> {
  const server = await startBenchServer(
    context,
    `[attachments]\nenabled = true\nmax_file_bytes = ${2 * total}\nuser_quota_bytes = ${8 * total}\nuploads_per_minute = 100000\n`,
  );
  const setting = `chatd tus: POST + ${patchBytes >= total ? 'one PATCH of the whole file' : `PATCHes of ${patchBytes / MIB} MiB`}`;
  try {
    const base = server.process.url;
    const probe = await fetch(`${base}/v1/uploads`, { method: 'OPTIONS', headers: { 'tus-resumable': '1.0.0' } });
    await probe.arrayBuffer();
    if (probe.status === 404) {
      return row(setting, total, Number.NaN, undefined, 0, 'WAITING: this chatd has no /v1/uploads yet (the tus endpoint is being built on branch att-uploads)');
    }
    const { token } = await signUp(base, 'uploader', 'bench password', 'bench');
    const tus = { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' };
    const pid = server.process.process.pid as number;
    const mark = server.mark();
    const started = performance.now();
    const { before, peak } = await sampleRss(pid, async () => {
      const created = await fetch(`${base}/v1/uploads`, {
        method: 'POST',
        headers: { ...tus, 'upload-length': String(total), 'upload-metadata': `filename ${Buffer.from('bench.bin').toString('base64')}` },
      });
      await created.arrayBuffer();
      const location = created.headers.get('location');
      if (created.status !== 201 || !location) throw new Error(`POST /v1/uploads answered ${created.status}`);
      for (let offset = 0; offset < total; offset += patchBytes) {
        const size = Math.min(patchBytes, total - offset);
        const patched = await sendBody(new URL(location, base).href, 'PATCH', size, {
          ...tus,
          'content-type': 'application/offset+octet-stream',
          'upload-offset': String(offset),
        });
        if (patched.status !== 204 || patched.headers['upload-offset'] !== String(offset + size)) {
          throw new Error(`PATCH at ${offset} answered ${patched.status} (Upload-Offset ${String(patched.headers['upload-offset'])}): ${patched.text}`);
        }
      }
    });
    const ms = performance.now() - started;
    return row(setting, total, ms, { before, peak }, server.cpuShareSince(mark));
  } finally {
    await server.stop();
  }
}

export const upload: Scenario = {
  name: 'upload',
  summary: 'a 1 GiB file (256 MiB with --quick): the disk alone, the transport alone (a streamed route to a file), and chatd over tus; server RSS during the upload',
  async run(context) {
    const total = (context.quick ? 256 : 1024) * MIB;
    const dir = tempDir('chatd-bench-upload-');
    const results: Result[] = [await diskWrite(dir, total)];
    context.log(`  disk: ${results[0]?.figures['MB/s']?.toFixed(0)} MB/s`);
    for (const kind of ['uws', 'node'] as const) results.push(await transportUpload(context, kind, dir, total));
    // One PATCH of the whole file where uWS takes its Content-Length; else the largest power of two it takes.
    results.push(await tusUpload(context, total, total > UWS_MAX_CONTENT_LENGTH ? 512 * MIB : total));
    results.push(await tusUpload(context, total, 4 * MIB));
    return results;
  },
};
