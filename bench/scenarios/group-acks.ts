import type { Result, Scenario } from '../lib/scenario.js';
import { type Shape, measureGroup } from './group.js';

/**
 * Issue 23's receipts: one group of 100, every member online, and every member device acking `delivered` as the
 * SDK does (after each socket read, the highest seq seen, one ack in flight per thread). Each ack that moves a
 * member's delivered cursor makes the server send `receipt` frames; the figures say how many, per message and per
 * delivery, and what the whole costs the server per message.
 */
export const groupAcks: Scenario = {
  name: 'group-acks',
  summary: 'one group of 100 members all online, every device acking delivered as the SDK does; 4 senders keeping 4 and then 16 messages in flight: cursor moves per message, receipt frames per delivery, server CPU per message',
  anyDeployment: true,
  async run(context) {
    const shapes: Shape[] = context.quick
      ? [{ groups: 1, members: 100, sendersPerGroup: 4, window: 4, acks: true }]
      : [
          // As in group-fanout: a window of 4 per sender is a moderate rate, 16 what the server can take.
          { groups: 1, members: 100, sendersPerGroup: 4, window: 4, acks: true },
          { groups: 1, members: 100, sendersPerGroup: 4, window: 16, acks: true },
        ];
    const results: Result[] = [];
    for (const shape of shapes) results.push(await measureGroup(context, 'group-acks', shape));
    return results;
  },
};
