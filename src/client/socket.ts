/**
 * The part of the WebSocket API the client uses: the browser's global
 * `WebSocket` and the `ws` package's both fit. The client never touches a
 * socket but through this.
 */
export interface SocketLike {
  readonly readyState: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { readonly data: unknown }) => void) | null;
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => unknown;

export type SocketFactory = (url: string) => SocketLike;

export function socketFactory(WebSocketClass: WebSocketConstructor): SocketFactory {
  return (url) => new WebSocketClass(url) as SocketLike;
}

/** The WebSocket URL of a chatd server from its HTTP base URL (`https://chat.example.org` → `wss://chat.example.org/v1/ws`). */
export function webSocketUrl(server: string): string {
  const url = new URL(server);
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}/v1/ws`;
  return url.toString();
}
