/**
 * Work shared by all of a node's stream responses, so that each costs no timer of its own: the
 * end-of-turn flush (the frames a session sends in one event-loop turn — an ack and its fanout, a
 * page of the inbox — leave as one chunk of the response, as uWS writes a WebSocket's frames of one
 * loop iteration together) and the keepalive sweep (one interval for every open response, where each
 * had its own).
 */

export interface TurnMember {
  /** The turn ended: write what this turn sent. */
  endOfTurn(): void;
}

export interface KeepaliveMember {
  /** An interval passed: a comment if nothing was written since the previous one. */
  tick(): void;
}

export class StreamTurns {
  private pending: TurnMember[] = [];
  private readonly live = new Set<KeepaliveMember>();
  private sweep: NodeJS.Timeout | undefined;

  constructor(private readonly keepaliveMs: number) {}

  /** Runs `member.endOfTurn()` once this turn's I/O callbacks and promise jobs are done (setImmediate: the same loop iteration). The caller schedules each member at most once per turn. */
  atEndOfTurn(member: TurnMember): void {
    this.pending.push(member);
    if (this.pending.length === 1) setImmediate(this.runTurn);
  }

  keepAlive(member: KeepaliveMember): void {
    this.live.add(member);
    if (!this.sweep) {
      this.sweep = setInterval(() => {
        for (const each of this.live) each.tick();
      }, this.keepaliveMs);
      this.sweep.unref();
    }
  }

  release(member: KeepaliveMember): void {
    this.live.delete(member);
    if (this.live.size === 0 && this.sweep) {
      clearInterval(this.sweep);
      this.sweep = undefined;
    }
  }

  private readonly runTurn = (): void => {
    const members = this.pending;
    this.pending = [];
    // In the order they first sent: a member's writes never depend on another's.
    for (const member of members) member.endOfTurn();
  };
}
