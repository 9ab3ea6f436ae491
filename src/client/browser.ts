/** `chatd/client` in browsers: the global WebSocket, no Node module anywhere on this path. */
export * from './index.js';
export { ChatClient } from './client.js';
