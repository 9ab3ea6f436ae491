/**
 * What stops `chatd serve`: a signal, or one of its own findings: (started by
 * npm) its parent is gone, or a TLS reload lost the listening socket.
 */
export type StopRequest = NodeJS.Signals | 'parent gone' | 'listening socket lost';

/** What to do with a request: begin the clean shutdown, nothing (it is underway), or exit at once. */
export type ShutdownStep = 'begin' | 'ignore' | 'exit now';

/**
 * Tells a person asking twice (exit at once) from the copies one request arrives as.
 *
 * One Ctrl-C or `kill -TERM -<group>` reaches chatd and its wrapper alike: npx forwards
 * its own copy (the same signal again at once), and npm's shell dies of it, which chatd
 * sees as its parent gone. Which of these chatd handles first is up to its event loop
 * (the parent check is a timer, signals come in the poll phase), so chatd's own
 * findings are never counted as a signal, before or after one (nor is a lost socket:
 * `docker stop` during that shutdown is a first request): only a second signal, a
 * different one or the same one later than `duplicateMs`, exits without a clean shutdown.
 */
export function shutdownRequests(now: () => number, duplicateMs: number): (request: StopRequest) => ShutdownStep {
  let begun = false;
  let signals = 0;
  let first: { signal: NodeJS.Signals; at: number } | undefined;
  return (request) => {
    if (request !== 'parent gone' && request !== 'listening socket lost') {
      if (first?.signal === request && now() - first.at < duplicateMs) return 'ignore';
      first ??= { signal: request, at: now() };
      signals++;
      if (signals > 1) return 'exit now';
    }
    if (begun) return 'ignore';
    begun = true;
    return 'begin';
  };
}
