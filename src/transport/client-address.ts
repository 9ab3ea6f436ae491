/**
 * The client's address: the socket's, or, behind a reverse proxy that
 * http.trust_proxy says we run, the last X-Forwarded-For hop (the one our
 * proxy added; earlier hops are whatever the client claimed).
 */
export function clientAddress(remoteAddress: string, forwardedFor: string | null | undefined, trustProxy: boolean): string {
  if (!trustProxy) return remoteAddress;
  const hops = (forwardedFor ?? '').split(',').map((hop) => hop.trim()).filter(Boolean);
  return hops.at(-1) ?? remoteAddress;
}
