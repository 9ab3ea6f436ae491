import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import WebSocket from 'ws';
import type { UploadOptions, UploadedAttachment } from './attachment-types.js';
import type { NamedSource } from './attachments.js';
import { ChatClient as PortableClient, type ChatClientOptions } from './client.js';
import { ClientError } from './errors.js';
import type { Sha256 } from './sha256.js';
import type { WebSocketConstructor } from './socket.js';

/** `chatd/client` in Node: Node 20 has no global WebSocket, so the `ws` package's; a file store; files uploaded from a path. */
export * from './index.js';
export { FileStore } from './file-store.js';

export class ChatClient extends PortableClient {
  constructor(options: ChatClientOptions) {
    super({ WebSocket: WebSocket as unknown as WebSocketConstructor, sha256: nodeSha256, ...options });
  }

  /** Also `{ path }`: the file is read a chunk at a time as it goes (a 1 GB file is never in memory). */
  override upload(input: Blob | Uint8Array | { readonly path: string }, options: UploadOptions = {}): Promise<UploadedAttachment> {
    if (input instanceof Uint8Array || !('path' in input)) return super.upload(input, options);
    return fileSource(input.path).then((source) => this.uploadSource(source, options));
  }
}

function nodeSha256(): Sha256 {
  const hash = createHash('sha256');
  return {
    update: (bytes) => void hash.update(bytes),
    digest: () => new Uint8Array(hash.digest()),
  };
}

async function fileSource(path: string): Promise<NamedSource> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new ClientError('invalid_field', `cannot read ${path}: ${(error as Error).message}`, false);
  }
  const file = handle;
  const { size } = await file.stat();
  return {
    size,
    name: basename(path),
    async read(offset, length) {
      const buffer = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        const { bytesRead } = await file.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === length ? buffer : buffer.subarray(0, filled);
    },
    close: () => file.close(),
  };
}
