import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { type Server, Socket, createServer } from 'node:net';
import { join } from 'node:path';
import sharp from 'sharp';
import { after, before, describe, it } from 'node:test';
import { AccountApi, ChatClient, type ClientMessage } from '../../src/client/node.js';
import { ClientError } from '../../src/client/errors.js';
import { encryptedSize } from '../../src/client/file-crypto.js';
import { ClientEvents } from '../helpers/client-events.js';
import { type ServerProcess, runCli, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';

/**
 * The SDK's attachments over the real server (docs/client.md, "Attachments";
 * docs/attachments.md): tus uploads with progress and resumption after a
 * connection cut in the middle of a chunk, downloads by a peer, signed links,
 * and encrypted attachments: decrypted by the peer, nothing of the plaintext
 * on the server's disk, a tampered ciphertext refused.
 */

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/**
 * A TCP proxy that resets the connection carrying the `cutAt`-th byte sent towards the server (in the middle of a
 * request body, as a dropped Wi-Fi does), once; and counts the bytes and connections that went through.
 */
class CuttingProxy {
  bytesUp = 0;
  connections = 0;
  cuts = 0;
  private readonly sockets = new Set<Socket>();
  private constructor(private readonly server: Server, readonly target: number, private cutAt: number | undefined) {}

  static async start(target: number, cutAt: number): Promise<CuttingProxy> {
    const server = createServer();
    const proxy = new CuttingProxy(server, target, cutAt);
    server.on('connection', (client) => proxy.accept(client));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
  }

  private accept(client: Socket): void {
    this.connections++;
    const upstream = new Socket();
    upstream.connect(this.target, '127.0.0.1');
    this.sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (this.cutAt !== undefined && this.bytesUp + chunk.length >= this.cutAt) {
        const keep = this.cutAt - this.bytesUp;
        this.bytesUp += keep;
        upstream.write(chunk.subarray(0, keep), () => {
          upstream.destroy();
          client.resetAndDestroy();
        });
        this.cutAt = undefined;
        this.cuts++;
        return;
      }
      this.bytesUp += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.writable && client.write(chunk));
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      a.on('error', () => undefined);
      a.on('close', () => b.destroy());
    }
  }
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? filesUnder(path) : entry.isFile() ? [path] : [];
  });
}

describe('SDK attachments over the real server', { timeout: 120_000 }, () => {
  let server: ServerProcess;
  let data: string;
  let dir: string;
  const clients: ChatClient[] = [];
  const proxies: CuttingProxy[] = [];
  let names = 0;

  before(async () => {
    dir = tempDir();
    data = join(dir, 'data');
    server = await startServer(['--data', data, '--config', writeConfig(dir, '[accounts]\nregistration = "open"\n[rate_limit]\nlogin_per_address = 100000\n[attachments]\nuploads_per_minute = 1000\n')]);
  });
  after(async () => {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(proxies.map((proxy) => proxy.close()));
    await server.stop();
  });

  async function user(prefix: string): Promise<string> {
    const name = `${prefix}${++names}`;
    await new AccountApi(server.url).register({ username: name, password: 'correct horse' });
    return name;
  }

  /** A logged-in device, online (with encryption: its standing settled). */
  async function device(username: string, options: { encryption?: boolean; via?: string } = {}): Promise<ClientEvents> {
    const login = await new AccountApi(server.url).login({ username, password: 'correct horse', device_name: 'attachments test', platform: 'bot' });
    const client = new ChatClient({ server: options.via ?? server.url, token: login.token, reconnect: { initialDelayMs: 50, maxDelayMs: 400 }, ...(options.encryption ? { encryption: true } : {}) });
    clients.push(client);
    const events = new ClientEvents(client);
    await client.start();
    await client.whenOnline();
    if (options.encryption) await events.until(() => events.standings[0]);
    return events;
  }

  /** The first message of the thread that carries attachments. */
  function withAttachments(events: ClientEvents, threadId: number): Promise<ClientMessage> {
    return events.until(() => events.messages.find((m) => m.thread_id === threadId && (m.attachments?.length ?? 0) > 0), `a message with attachments in thread ${threadId}`);
  }

  it('uploads a file in chunks, reporting progress after each, and the server describes what it stored', async () => {
    const alice = await device(await user('alice'));
    const bytes = new Uint8Array(randomBytes(5 * 1024 * 1024 + 123));
    const progress: Array<[number, number]> = [];
    const attachment = await alice.client.upload(bytes, { name: 'noise.bin', chunkBytes: 1024 * 1024, onProgress: (sent, total) => progress.push([sent, total]) });
    assert.equal(attachment.sha256, sha256(bytes));
    assert.equal(attachment.size, bytes.length);
    assert.equal(attachment.name, 'noise.bin');
    assert.equal(progress.length, 6, 'one report per chunk');
    assert.deepEqual(progress.at(-1), [bytes.length, bytes.length]);
    assert.ok(progress.every(([sent], i) => i === 0 || sent > (progress[i - 1] as [number, number])[0]), 'progress only grows');
  });

  it('uploads from a path, and an upload cut in the middle of a chunk resumes where the server stands: the hash matches', async () => {
    const username = await user('alice');
    const path = join(dir, 'big.bin');
    const bytes = new Uint8Array(randomBytes(3 * 1024 * 1024));
    writeFileSync(path, bytes);
    const chunkBytes = 512 * 1024;
    // Cut inside the fourth PATCH body (headers are small next to half a megabyte).
    const proxy = await CuttingProxy.start(server.port, 3 * chunkBytes + 200_000);
    proxies.push(proxy);
    const alice = await device(username, { via: proxy.url });
    const attachment = await alice.client.upload({ path }, { chunkBytes });
    assert.equal(proxy.cuts, 1, 'the connection was cut once');
    assert.ok(proxy.connections >= 2, 'the upload went on over a new connection');
    assert.equal(attachment.sha256, sha256(bytes));
    assert.equal(attachment.name, 'big.bin');
    // Resumed, not started again: at most the cut chunk was sent twice.
    assert.ok(proxy.bytesUp < bytes.length + 2 * chunkBytes, `${proxy.bytesUp} bytes went up for a ${bytes.length}-byte file`);
  });

  it('a cancelled upload rejects with aborted', async () => {
    const alice = await device(await user('alice'));
    const controller = new AbortController();
    const upload = alice.client.upload(new Uint8Array(4 * 1024 * 1024), {
      chunkBytes: 256 * 1024,
      signal: controller.signal,
      onProgress: (sent) => sent >= 512 * 1024 && controller.abort(),
    });
    await assert.rejects(upload, (error: unknown) => error instanceof ClientError && error.code === 'aborted');
  });

  it('a plaintext message carries an attachment: the peer gets its description, downloads it, and a signed link serves it without the token', async () => {
    const [aliceName, bobName] = [await user('alice'), await user('bob')];
    const [alice, bob] = [await device(aliceName), await device(bobName)];
    const thread = await alice.client.openDirect(bobName);
    const bytes = new Uint8Array(Buffer.from(`a plain text file ${randomBytes(8).toString('hex')}\n`.repeat(200)));
    const attachment = await alice.client.upload(bytes, { name: 'notes.txt' });
    await alice.client.send(thread.id, { text: 'my notes' }, { attachments: [attachment] });
    const received = await withAttachments(bob, thread.id);
    assert.deepEqual(received.body, { text: 'my notes' });
    const [got] = received.attachments ?? [];
    assert.equal(got?.id, attachment.id);
    assert.equal(got?.sha256, sha256(bytes));
    assert.deepEqual(await bob.client.download(got!), bytes);
    const progress: number[] = [];
    assert.deepEqual(await bob.client.download(got!.id, { range: { start: 10, end: 19 }, onProgress: (n) => progress.push(n) }), bytes.subarray(10, 20));
    assert.deepEqual(progress.at(-1), 10);
    const links = await bob.client.attachmentLinks(got!.id);
    assert.match(links.url, /^http:\/\/127\.0\.0\.1:\d+\/v1\/attachments\//);
    const response = await fetch(links.url);
    assert.equal(response.status, 200);
    assert.deepEqual(new Uint8Array(await response.arrayBuffer()), bytes);
    // A message of attachments only: no body.
    await alice.client.send(thread.id, null, { attachments: [attachment] });
    const bare = await bob.until(() => bob.messages.find((m) => m.thread_id === thread.id && m.seq > received.seq && (m.attachments?.length ?? 0) > 0));
    assert.equal(bare.body ?? null, null);
  });

  it('an encrypted thread: the peer downloads and decrypts, no plaintext byte of the file is on the server\'s disk, and a tampered ciphertext is refused', async () => {
    const [aliceName, bobName] = [await user('alice'), await user('bob')];
    const [alice, bob] = [await device(aliceName, { encryption: true }), await device(bobName, { encryption: true })];
    const thread = await alice.client.openDirect(bobName);
    const marker = randomBytes(64);
    const plain = new Uint8Array(Buffer.concat(Array.from({ length: 3000 }, () => marker))); // 192,000 bytes: three secretstream chunks
    const thumbnail = new Uint8Array(Buffer.concat([Buffer.from('thumb'), marker]));
    const progress: number[] = [];
    const attachment = await alice.client.upload(plain, {
      encrypt: true, name: 'secret-plans.png', type: 'image/png', width: 640, height: 480,
      thumbnail: { bytes: thumbnail, width: 64, height: 48 }, chunkBytes: 64 * 1024, onProgress: (sent) => progress.push(sent),
    });
    assert.ok(attachment.encrypted, 'the upload result carries what the envelope seals');
    assert.ok(progress.length >= 3, 'progress during an encrypted upload');
    await alice.client.send(thread.id, { text: 'the plans' }, { attachments: [attachment] });
    const received = await withAttachments(bob, thread.id);
    assert.equal(received.e2e?.status, 'ok');
    assert.deepEqual(received.body, { text: 'the plans' }, 'the app gets its own body back, not the sealed wrapper');
    const [got] = received.attachments ?? [];
    assert.equal(got?.name, 'secret-plans.png');
    assert.equal(got?.mime, 'image/png');
    assert.equal(got?.size, plain.length);
    assert.deepEqual([got?.width, got?.height, got?.thumbnail?.width], [640, 480, 64]);
    assert.deepEqual(await bob.client.download(got!), plain);
    assert.deepEqual(await bob.client.download(got!, { thumbnail: true }), thumbnail);

    // What the server holds: neither the marker, nor the name, in any file under its data directory.
    const files = filesUnder(data);
    assert.ok(files.length > 0);
    for (const file of files) {
      const content = readFileSync(file);
      assert.equal(content.indexOf(marker), -1, `${file} holds plaintext of the file`);
      assert.equal(content.indexOf(Buffer.from('secret-plans')), -1, `${file} holds the file's name`);
    }

    // The stored ciphertext altered on disk: the download fails, no plaintext comes out.
    const stored = files.find((file) => statSync(file).size === encryptedSize(plain.length) && sha256(readFileSync(file)) === got!.encrypted!.sha256);
    assert.ok(stored, 'the ciphertext is stored as a file under the data directory');
    const altered = readFileSync(stored);
    altered[100] = (altered[100] as number) ^ 0xff;
    writeFileSync(stored, altered);
    await assert.rejects(bob.client.download(got!), (error: unknown) => error instanceof ClientError && error.code === 'attachment_corrupt');
  });

  it('refuses a plaintext upload in an encrypted message, and an encrypted upload in a plaintext one, before storing anything', async () => {
    const [aliceName, bobName] = [await user('alice'), await user('bob')];
    const alice = await device(aliceName, { encryption: true });
    const thread = await alice.client.openDirect(bobName);
    const plain = await alice.client.upload(new Uint8Array(randomBytes(100)), { name: 'x.bin' });
    await assert.rejects(alice.client.send(thread.id, null, { attachments: [plain], encrypted: true }), (error: unknown) => error instanceof ClientError && error.code === 'encryption_required');
    const sealed = await alice.client.upload(new Uint8Array(randomBytes(100)), { encrypt: true });
    await assert.rejects(alice.client.send(thread.id, null, { attachments: [sealed], encrypted: false }), (error: unknown) => error instanceof ClientError && error.code === 'invalid_field');
    assert.equal(alice.client.pending().length, 0);
  });

  /** A small PNG made here (the server finds it is an image and makes a thumbnail of a plaintext one). */
  async function png(name: string): Promise<{ path: string; bytes: Buffer }> {
    const bytes = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toBuffer();
    const path = join(dir, name);
    writeFileSync(path, bytes);
    return { path, bytes };
  }

  it('chatd chat: /file uploads with a progress line and sends; the peer sees the attachment with a signed link', async () => {
    const [aliceName, bobName] = [await user('alice'), await user('bob')];
    const bob = await device(bobName);
    const { path, bytes } = await png('pic.png');
    const env = { XDG_STATE_HOME: join(dir, 'xdg') };
    const sent = await runCli(['chat', '--server', server.url, '--user', aliceName], { input: `correct horse\n/dm ${bobName}\n/file ${path} a picture\n`, env });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /uploading pic\.png: 100% \(\d+ B of \d+ B\)/);
    assert.match(sent.stdout, /^uploaded pic\.png$/m);
    const thread = (await bob.client.threads()).threads.find((t) => t.peer?.username === aliceName);
    const received = await withAttachments(bob, thread!.id);
    assert.deepEqual(received.body, { text: 'a picture' });
    assert.equal(received.attachments?.[0]?.mime, 'image/png');
    assert.deepEqual(received.attachments?.[0]?.thumbnail, { width: 64, height: 48 });
    assert.deepEqual(Buffer.from(await bob.client.download(received.attachments![0]!)), bytes);
    const shown = await runCli(['chat', '--server', server.url, '--user', aliceName], { input: `/open @${bobName}\n`, env });
    const line = /^ {2}\[photo pic\.png [\d.]+ (?:B|kB)\] (http:\/\/\S+)$/m.exec(shown.stdout);
    assert.ok(line, shown.stdout);
    assert.deepEqual(Buffer.from(await (await fetch(line[1] as string)).arrayBuffer()), bytes);
  });

  it('chatd chat --encryption: /file encrypts; the peer decrypts; the file shows as encrypted, without a link, and /save decrypts it', async () => {
    const [aliceName, bobName] = [await user('alice'), await user('bob')];
    const bob = await device(bobName, { encryption: true });
    const { path, bytes } = await png('secret.png');
    const env = { XDG_STATE_HOME: join(dir, 'xdg') };
    const sent = await runCli(['chat', '--server', server.url, '--user', aliceName, '--encryption'], { input: `correct horse\n/dm ${bobName}\n/file ${path}\n`, env });
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(sent.stdout, /^uploaded secret\.png \(encrypted\)$/m);
    const thread = (await bob.client.threads()).threads.find((t) => t.peer?.username === aliceName);
    const received = await withAttachments(bob, thread!.id);
    assert.equal(received.e2e?.status, 'ok');
    assert.equal(received.body ?? null, null);
    assert.equal(received.attachments?.[0]?.mime, 'image/png');
    assert.deepEqual([received.attachments?.[0]?.width, received.attachments?.[0]?.height], [64, 48]);
    assert.deepEqual(received.attachments?.[0]?.thumbnail, { width: 64, height: 48 }, 'the terminal client made and encrypted a preview');
    assert.deepEqual(Buffer.from(await bob.client.download(received.attachments![0]!)), bytes);
    const preview = await sharp(Buffer.from(await bob.client.download(received.attachments![0]!, { thumbnail: true }))).metadata();
    assert.equal(preview.format, 'jpeg');
    const saved = join(dir, 'saved.png');
    const shown = await runCli(['chat', '--server', server.url, '--user', aliceName], { input: `/open @${bobName}\n/save 1 ${saved}\n`, env });
    assert.match(shown.stdout, /^ {2}\[photo secret\.png [\d.]+ (?:B|kB) \(encrypted\)\]$/m);
    assert.match(shown.stdout, /^saved secret\.png to /m);
    assert.deepEqual(readFileSync(saved), bytes);
  });
});
