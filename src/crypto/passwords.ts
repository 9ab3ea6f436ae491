import argon2 from 'argon2';

export interface PasswordParameters {
  /** KiB of memory per hash. */
  readonly memoryKib: number;
  readonly timeCost: number;
  readonly parallelism: number;
}

/**
 * argon2id password hashing. Each hash carries its own random salt and its
 * parameters (PHC string), so hashes made under older settings still verify
 * and can be upgraded with needsRehash at the next successful login.
 * Hashing runs on libuv's thread pool: never call it inside a transaction.
 */
export class PasswordHasher {
  private readonly options;
  /** A real hash of nothing, verified against when a username is unknown, so both cases take the same time. */
  private decoy: Promise<string> | undefined;

  constructor(parameters: PasswordParameters) {
    this.options = {
      type: argon2.argon2id,
      memoryCost: parameters.memoryKib,
      timeCost: parameters.timeCost,
      parallelism: parameters.parallelism,
    } as const;
  }

  hash(password: string): Promise<string> {
    return argon2.hash(password, this.options);
  }

  /** False for a wrong password or a malformed hash; never throws for either. */
  async verify(hash: string, password: string): Promise<boolean> {
    try {
      return await argon2.verify(hash, password);
    } catch {
      return false;
    }
  }

  /** Spends the time of one verification and answers false. */
  async verifyDecoy(password: string): Promise<false> {
    this.decoy ??= this.hash('chatd decoy password');
    await this.verify(await this.decoy, password);
    return false;
  }

  needsRehash(hash: string): boolean {
    try {
      return argon2.needsRehash(hash, this.options);
    } catch {
      return true;
    }
  }
}
