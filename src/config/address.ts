/** A listening address written as one string in the configuration ("127.0.0.1:9464", "[::1]:9464"). */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Reads "host:port", with an IPv6 host in brackets. The host is required:
 * a separate listener for /metrics exists to be reachable from fewer places
 * than the main port, so it names its address. Port 0 picks a free port
 * (tests; the log says which).
 */
export function parseHostPort(text: string): HostPort | { readonly error: string } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return { error: 'must be host:port, such as "127.0.0.1:9464" or "[::1]:9464"' };
  const port = Number(match[3]);
  if (port > 65535) return { error: `port ${port} is above 65535` };
  return { host: (match[1] ?? match[2]) as string, port };
}
