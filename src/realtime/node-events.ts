import type { DeliveryService } from '../services/delivery.js';
import type { BrokerHandler } from '../services/live/broker.js';
import type { RevocationListener } from '../services/types.js';
import type { ChannelRegistry } from './channels.js';

export interface NodeEventsDeps {
  readonly channels: Pick<ChannelRegistry, 'publication' | 'follow' | 'unfollow'>;
  /** Closes this node's sessions of revoked devices (and announces their keys). */
  readonly revocations: RevocationListener;
  readonly delivery: Pick<DeliveryService, 'livenessTaken'>;
}

/** What this node does with what the broker brings: publications to its followers, control events to their owners. */
export function nodeEvents(deps: NodeEventsDeps): BrokerHandler {
  return {
    publication: (channel, text) => deps.channels.publication(channel, text),
    control: (event) => {
      switch (event.kind) {
        case 'revoked':
          deps.revocations.revoked(event.revocations);
          return;
        case 'members_changed':
          if (event.joined.length > 0) deps.channels.follow(event.joined, event.threadId, event.frames ?? []);
          if (event.left.length > 0) deps.channels.unfollow(event.left, event.threadId);
          return;
        case 'device_live':
          deps.delivery.livenessTaken(event.deviceId, event.key);
          return;
      }
    },
  };
}
