import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import { PasswordHasher } from '../crypto/passwords.js';
import { AccountService } from '../services/accounts.js';
import { AdminService } from '../services/admin.js';
import type { AuditLog } from '../services/audit.js';
import { RateLimiter } from '../services/rate-limiter.js';
import type { RevocationListener } from '../services/types.js';
import type { Storage } from '../storage/ports/storage.js';

/** The account and admin services, as the server and the admin CLI both build them. */
export interface Core {
  readonly hasher: PasswordHasher;
  readonly accounts: AccountService;
  readonly admin: AdminService;
}

export function buildCore(config: Config, storage: Pick<Storage, 'accounts' | 'admin'>, clock: Clock, revocations: RevocationListener, audit: AuditLog): Core {
  const hasher = new PasswordHasher({
    memoryKib: config.passwords.memory_kib,
    timeCost: config.passwords.time_cost,
    parallelism: config.passwords.parallelism,
  });
  const windowMs = config.rate_limit.window_seconds * 1000;
  const accounts = new AccountService({
    storage: storage.accounts,
    hasher,
    clock,
    settings: {
      registration: config.accounts.registration,
      passwordMinLength: config.accounts.password_min_length,
      loginSlowdownMs: config.rate_limit.login_slowdown_ms,
    },
    limiters: {
      perAddress: new RateLimiter(clock, config.rate_limit.login_per_address, windowMs),
      failuresPerUsernameAndAddress: new RateLimiter(clock, config.rate_limit.login_per_username, windowMs),
      failuresPerUsername: new RateLimiter(clock, config.rate_limit.login_slowdown_after, windowMs),
    },
    revocations,
    audit,
  });
  const admin = new AdminService({ storage: storage.admin, accounts, hasher, clock, passwordMinLength: config.accounts.password_min_length, revocations, audit });
  return { hasher, accounts, admin };
}
