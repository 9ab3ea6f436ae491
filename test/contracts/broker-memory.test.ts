import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MemoryBroker } from '../../src/realtime/memory-broker.js';
import type { Channel } from '../../src/services/live/broker.js';
import { brokerContract } from './broker.contract.js';

brokerContract('in memory', async () => ({ nodes: [new MemoryBroker()], flush: async () => {}, close: async () => {} }));

describe('MemoryBroker', () => {
  it('delivers before publish returns: a fanout right after an ack goes out behind it, in the same turn', () => {
    const broker = new MemoryBroker();
    const seen: string[] = [];
    broker.run({ publication: (_channel: Channel, text: string) => seen.push(text), control: () => seen.push('control') });
    void broker.subscribe('t:1');
    seen.push('ack');
    broker.publish('t:1', 'message');
    broker.publishControl({ kind: 'device_live', deviceId: 1, key: 'k' });
    seen.push('after');
    assert.deepEqual(seen, ['ack', 'message', 'control', 'after']);
  });
});
