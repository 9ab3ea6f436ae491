import type { Clock } from '../clock.js';
import type { Config } from '../config/schema.js';
import type { KeyChecker } from '../crypto/keys.js';
import type { Logger } from '../log.js';
import { PushDispatcher } from '../push/dispatcher.js';
import { type Providers, platformsOf } from '../push/providers.js';
import type { AccountService } from '../services/accounts.js';
import type { AuditLog } from '../services/audit.js';
import { ContactService } from '../services/contacts.js';
import { DeliveryService } from '../services/delivery.js';
import { DeviceMessageService } from '../services/device-messages.js';
import { HistoryService } from '../services/history.js';
import { KeyService } from '../services/keys.js';
import type { RateLimitStore } from '../services/limits/rate-limit-store.js';
import { SendBudget } from '../services/limits/send-budget.js';
import type { Broker } from '../services/live/broker.js';
import type { DeviceLinks } from '../services/live/device-links.js';
import type { PresenceStore } from '../services/live/presence-store.js';
import { MessageChangeService } from '../services/message-changes.js';
import { MessagingService } from '../services/messaging.js';
import { PresenceService } from '../services/presence.js';
import { PushTokenService } from '../services/push-tokens.js';
import { allowedHostsOf } from '../services/webpush-subscription.js';
import { SearchService } from '../services/search.js';
import { ThreadService } from '../services/threads.js';
import { UserSearchService } from '../services/user-search.js';
import type { Fanout } from '../services/types.js';
import type { LiveLink } from '../realtime/channels.js';
import type { Storage } from '../storage/ports/storage.js';

/** What the chat services are built on: the storage engine, the live seams, and what the server process gives them. */
export interface ChatServiceDeps {
  readonly config: Config;
  readonly storage: Storage;
  readonly accounts: AccountService;
  readonly clock: Clock;
  readonly log: Logger;
  readonly audit: AuditLog;
  readonly fanout: Fanout;
  readonly broker: Broker;
  readonly links: DeviceLinks<LiveLink>;
  readonly presenceStore: PresenceStore;
  /** This node's id: the prefix of its link keys and presence keys. */
  readonly node: string;
  /** The limits shared across connections (the user's send budget among them). */
  readonly limitStore: RateLimitStore;
  readonly keyChecker: KeyChecker;
  readonly providers: Providers;
}

/**
 * How long the push worker lets the sends of a burst gather before its pass (its expansion and claim are two
 * commits): a notification goes out at most this much later, and a lightly loaded server pays two commits per
 * pass instead of per message (docs/performance.md, "CPU per message at moderate load").
 */
const PUSH_GATHER_MS = 50;

/** The services of the chat (what the session's handlers call), the delivery of inboxes, and the push worker they wake. */
export function buildChatServices(deps: ChatServiceDeps) {
  const { config, storage, clock, fanout } = deps;
  const push = platformsOf(deps.providers);
  const pushes = new PushDispatcher({
    storage: storage.pushQueue,
    clock,
    log: deps.log,
    providers: deps.providers,
    badge: (userId) => storage.pushQueue.badgeCount(userId),
    settings: {
      preview: config.push.preview,
      maxAgeMs: config.push.max_age_seconds * 1000,
      maxAttempts: config.push.max_attempts,
      retryBaseMs: config.push.retry_base_ms,
      concurrency: config.push.concurrency,
      breakerDeadTokens: config.push.breaker_dead_tokens,
      gatherMs: PUSH_GATHER_MS,
    },
  });
  // One budget for sends and changes: each is a message stored.
  const sendBudget = new SendBudget(deps.limitStore, config.limits.user_sends_per_second);
  const services = {
    messaging: new MessagingService({
      storage: storage.messaging,
      attachments: storage.attachments,
      clock,
      fanout,
      pushes,
      sendBudget,
      settings: {
        push,
        maxBodyBytes: config.messages.max_body_bytes,
        requireE2e: config.messages.require_e2e,
        attachmentsEnabled: config.attachments.enabled,
      },
    }),
    changes: new MessageChangeService({
      storage: storage.messaging,
      history: storage.history,
      clock,
      fanout,
      sendBudget,
      settings: {
        maxBodyBytes: config.messages.max_body_bytes,
        editWindowMs: config.messages.edit_window_seconds * 1000,
        requireE2e: config.messages.require_e2e,
      },
    }),
    history: new HistoryService({ storage: storage.history, settings: { pageMax: config.messages.history_page_max } }),
    search: new SearchService({
      storage: storage.search,
      settings: { enabled: config.search.enabled, perMinute: config.search.searches_per_minute },
      limits: deps.limitStore,
    }),
    threads: new ThreadService({
      storage: storage.threads,
      clock,
      fanout,
      settings: { requireE2e: config.messages.require_e2e, maxGroupMembers: config.messages.max_group_members },
    }),
    contacts: new ContactService({ storage: storage.contacts, clock }),
    people: new UserSearchService({ storage: storage.accounts, mode: config.accounts.user_search }),
    presence: new PresenceService({ storage: storage.presence, clock, fanout, connections: deps.presenceStore, offlineGraceMs: config.presence.offline_grace_ms, node: deps.node }),
    pushTokens: new PushTokenService({ storage: storage.pushTokens, enabled: push, webPushHosts: allowedHostsOf(config.webpush.allowed_hosts) }),
    keys: new KeyService({ storage: storage.keys, clock, fanout, checker: deps.keyChecker, audit: deps.audit, passwords: deps.accounts }),
    deviceMessages: new DeviceMessageService({
      storage: storage.deviceMessages,
      clock,
      fanout,
      settings: {
        maxMessageBytes: config.e2e.max_device_message_bytes,
        maxQueueBytes: config.e2e.max_device_queue_bytes,
        maxQueueMessages: config.e2e.max_device_queue_messages,
        ttlMs: config.e2e.device_message_ttl_days * 86_400_000,
      },
    }),
  };
  const delivery = new DeliveryService({
    storage: storage.delivery,
    links: deps.links,
    broker: deps.broker,
    clock,
    pushes,
    settings: {
      maxMessages: config.inbox.max_messages,
      readDiffusionAbove: config.messages.read_diffusion_above,
      push,
      inboxMaxAgeMs: config.inbox.max_age_days * 86_400_000,
    },
  });
  return { services, delivery, pushes };
}
