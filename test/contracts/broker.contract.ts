import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Broker, BrokerHandler, Channel, ControlEvent } from '../../src/services/live/broker.js';

/** Nodes sharing one broker. An in-memory broker is one node; a networked one gives two or more over the same backend. */
export interface BrokerFixture {
  readonly nodes: readonly Broker[];
  /** Resolves once everything published so far has been delivered (a networked broker round-trips a marker). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** What one node received, in order. */
class Recorder implements BrokerHandler {
  readonly publications: Array<[Channel, string]> = [];
  readonly controls: ControlEvent[] = [];
  publication(channel: Channel, text: string): void {
    this.publications.push([channel, text]);
  }
  control(event: ControlEvent): void {
    this.controls.push(event);
  }
}

async function running(make: () => Promise<BrokerFixture>): Promise<{ fixture: BrokerFixture; recorders: Recorder[] }> {
  const fixture = await make();
  const recorders = fixture.nodes.map((node) => {
    const recorder = new Recorder();
    node.run(recorder);
    return recorder;
  });
  return { fixture, recorders };
}

/**
 * What every Broker must do, on the in-memory broker and on Redis. Delivery may
 * come after publish returns: every check waits for `flush()` before it looks.
 */
export function brokerContract(name: string, make: () => Promise<BrokerFixture>): void {
  describe(`Broker contract: ${name}`, () => {
    it('delivers a publication to a node that subscribes its channel, once, and nothing of channels it does not', async () => {
      const { fixture, recorders } = await running(make);
      const [node] = fixture.nodes as [Broker];
      await node.subscribe('t:1');
      await node.subscribe('t:1');
      node.publish('t:1', 'one');
      node.publish('t:2', 'elsewhere');
      node.publish('u:1', 'elsewhere');
      await fixture.flush();
      assert.deepEqual(recorders[0]?.publications, [['t:1', 'one']]);
      await fixture.close();
    });

    it('stops delivering a channel once it is unsubscribed, and says whether a channel is subscribed', async () => {
      const { fixture, recorders } = await running(make);
      const [node] = fixture.nodes as [Broker];
      await node.subscribe('d:7');
      assert.equal(node.subscribed('d:7'), true);
      node.publish('d:7', 'before');
      await fixture.flush();
      node.unsubscribe('d:7');
      node.unsubscribe('d:7');
      assert.equal(node.subscribed('d:7'), false);
      node.publish('d:7', 'after');
      await fixture.flush();
      assert.deepEqual(recorders[0]?.publications, [['d:7', 'before']]);
      await fixture.close();
    });

    it("keeps one publisher's order within a channel", async () => {
      const { fixture, recorders } = await running(make);
      const last = fixture.nodes.at(-1) as Broker;
      await last.subscribe('t:5');
      await last.subscribe('u:5');
      await fixture.flush();
      const publisher = fixture.nodes[0] as Broker;
      const sent = Array.from({ length: 200 }, (_, i) => String(i));
      for (const text of sent) {
        publisher.publish('t:5', text);
        publisher.publish('u:5', `u${text}`);
      }
      await fixture.flush();
      const received = recorders.at(-1)?.publications ?? [];
      assert.deepEqual(received.filter(([channel]) => channel === 't:5').map(([, text]) => text), sent);
      assert.deepEqual(received.filter(([channel]) => channel === 'u:5').map(([, text]) => text), sent.map((text) => `u${text}`));
      await fixture.close();
    });

    it('delivers a control event to every node, the publisher included, whatever they subscribe', async () => {
      const { fixture, recorders } = await running(make);
      const event: ControlEvent = { kind: 'members_changed', threadId: 3, joined: [1, 2], left: [4] };
      (fixture.nodes[0] as Broker).publishControl(event);
      (fixture.nodes[0] as Broker).publishControl({ kind: 'device_live', deviceId: 9, key: 'a:1' });
      await fixture.flush();
      for (const recorder of recorders) {
        assert.deepEqual(recorder.controls, [event, { kind: 'device_live', deviceId: 9, key: 'a:1' }], 'plain data, in order');
      }
      await fixture.close();
    });

    it('carries revocations as plain data', async () => {
      const { fixture, recorders } = await running(make);
      const event: ControlEvent = { kind: 'revoked', revocations: [{ id: 12, userId: 3, deviceId: null, reason: 'user_disabled' }] };
      (fixture.nodes[0] as Broker).publishControl(event);
      await fixture.flush();
      assert.deepEqual(recorders[0]?.controls, [event]);
      await fixture.close();
    });

    it('reaches a node that holds the subscription from another node that publishes', async (t) => {
      const { fixture, recorders } = await running(make);
      if (fixture.nodes.length < 2) {
        t.skip('one node');
        await fixture.close();
        return;
      }
      const [a, b] = fixture.nodes as [Broker, Broker];
      await b.subscribe('t:9');
      await fixture.flush();
      a.publish('t:9', 'across');
      await fixture.flush();
      assert.deepEqual(recorders[1]?.publications, [['t:9', 'across']]);
      assert.deepEqual(recorders[0]?.publications, [], 'the publisher did not subscribe');
      await fixture.close();
    });

    it('delivers nothing after close, whoever publishes', async () => {
      const { fixture, recorders } = await running(make);
      const [node] = fixture.nodes as [Broker];
      await node.subscribe('t:1');
      await fixture.flush();
      await node.close();
      // A networked broker delivers later than publish returns: every node publishes, then the fixture waits.
      for (const publisher of fixture.nodes) {
        publisher.publish('t:1', 'late');
        publisher.publishControl({ kind: 'device_live', deviceId: 1, key: 'x' });
      }
      await fixture.flush();
      assert.deepEqual([recorders[0]?.publications, recorders[0]?.controls], [[], []]);
      await fixture.close();
    });
  });
}
