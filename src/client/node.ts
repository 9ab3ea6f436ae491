import WebSocket from 'ws';
import { ChatClient as PortableClient, type ChatClientOptions } from './client.js';
import type { WebSocketConstructor } from './socket.js';

/** `chatd/client` in Node: Node 20 has no global WebSocket, so the `ws` package's; and a file store. */
export * from './index.js';
export { FileStore } from './file-store.js';

export class ChatClient extends PortableClient {
  constructor(options: ChatClientOptions) {
    super({ WebSocket: WebSocket as unknown as WebSocketConstructor, ...options });
  }
}
