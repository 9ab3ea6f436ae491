/**
 * Why a listening socket could not be made, in words, with the settings that
 * choose another port or address. `code` is the system's (EADDRINUSE …), or
 * undefined where the socket library does not say (uWebSockets.js).
 */
export function whyNotListening(code: string | undefined, message: string | undefined, settings: string): string {
  if (code === 'EADDRINUSE') return `the port is in use: stop what uses it, or choose another (${settings})`;
  if (code === 'EADDRNOTAVAIL') return `the address is not one of this machine's (${settings})`;
  if (code === undefined) return `the port is in use, or the address is not one of this machine's (${settings})`;
  return `${message ?? code} (${settings})`;
}

/** The settings of the main listener, as `serve` takes them. */
export const SERVER_ADDRESS_SETTINGS = '--port and --host, or server.port and server.host';
