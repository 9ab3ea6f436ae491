/**
 * Whether a device's token still works, as every port reports it: the
 * device revoked, its user disabled, its user deleted. Services decide what a
 * state means (services/revocations.ts); engines only report it.
 */
export interface TokenState {
  readonly revoked: boolean;
  readonly disabled: boolean;
  readonly deleted: boolean;
}

/**
 * The one refusal shape of every unit acting for a device: it checks the
 * device's token inside the unit (a revocation that committed first wins) and,
 * when the token no longer works, stores nothing and answers this. `state`:
 * what the unit found, undefined for no such device; the service turns it into
 * today's error (services/revocations.ts, refuseSignedOut).
 */
export interface SignedOut {
  readonly kind: 'signed_out';
  readonly state: TokenState | undefined;
}
