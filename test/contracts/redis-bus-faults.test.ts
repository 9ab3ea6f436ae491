import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { openRedisBus } from '../../src/realtime/redis/connection.js';
import { BusStartError, BusUnavailableError } from '../../src/realtime/redis/errors.js';
import type { BrokerHandler, Channel, ControlEvent } from '../../src/services/live/broker.js';
import { createLogger } from '../../src/log.js';
import { freeLocalPort } from '../helpers/engine-process.js';
import { type RedisServer, startRedis } from '../helpers/redis.js';
import { type BusNode, freshPrefix, startBusNode } from '../helpers/redis-bus.js';
import { TcpProxy } from '../helpers/proxy.js';
import { Waiters } from '../helpers/waiters.js';
import type { BusClient } from '../../src/realtime/redis/connection.js';

/** What a node received, with waits on it. */
class Received implements BrokerHandler {
  readonly texts: string[] = [];
  readonly controls: ControlEvent[] = [];
  private readonly waiters = new Waiters();
  publication(_channel: Channel, text: string): void {
    this.texts.push(text);
    this.waiters.notify();
  }
  control(event: ControlEvent): void {
    this.controls.push(event);
    this.waiters.notify();
  }
  async text(text: string): Promise<void> {
    await this.waiters.until(() => (this.texts.includes(text) ? true : undefined), 5000, () => `never received ${text}; got ${this.texts.join(', ')}`);
  }
  async controlCount(count: number): Promise<void> {
    await this.waiters.until(() => (this.controls.length >= count ? true : undefined), 5000, () => `${this.controls.length} control events, waited for ${count}`);
  }
}

/** Resolves at the client's next `event` (attach before causing it). */
function next(client: BusClient, event: 'ready' | 'error'): Promise<void> {
  return new Promise((resolve) => client.once(event, () => resolve()));
}

/** Resolves once every connection of these nodes has come back (attach before Redis returns). */
function allBack(nodes: readonly BusNode[]): Promise<unknown> {
  return Promise.all(nodes.flatMap((node) => [next(node.bus.commands, 'ready'), next(node.bus.subscriber, 'ready')]));
}

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(async () => {
  await server.stop();
});

async function twoNodes(): Promise<{ a: BusNode; b: BusNode; received: Received; close: () => Promise<void> }> {
  const prefix = freshPrefix();
  const a = await startBusNode(server.url, prefix, 'a');
  const b = await startBusNode(server.url, prefix, 'b');
  const received = new Received();
  a.broker.run(new Received());
  b.broker.run(received);
  return {
    a,
    b,
    received,
    close: async () => {
      for (const node of [a, b]) {
        await node.broker.close();
        await node.bus.close();
      }
    },
  };
}

describe('The Redis bus when Redis goes away', () => {
  it('loses what is published while Redis is down, without an error, and delivers again to the resubscribed node once it is back', async () => {
    const { a, b, received, close } = await twoNodes();
    await b.broker.subscribe('t:1');
    a.broker.publish('t:1', 'before');
    await received.text('before');
    assert.equal(await a.bus.ping(), true);
    assert.ok((a.bus.latency()?.count ?? 0) >= 2, 'the publish and the ping were timed');

    const lost = [next(a.bus.commands, 'error'), next(b.bus.subscriber, 'error')];
    const back = allBack([a, b]);
    await server.stop();
    await Promise.all(lost);
    assert.doesNotThrow(() => {
      a.broker.publish('t:1', 'while down');
      a.broker.publishControl({ kind: 'device_live', deviceId: 1, key: 'lost' });
    });
    assert.equal(a.broker.dropped, 2, 'dropped and counted');
    assert.equal(await a.bus.ping(), false);
    await assert.rejects(a.bus.run((client) => client.get('anything')), BusUnavailableError);

    await server.start();
    await back;
    a.broker.publish('t:1', 'after');
    a.broker.publishControl({ kind: 'device_live', deviceId: 2, key: 'after' });
    await received.text('after');
    await received.controlCount(1);
    assert.deepEqual(received.texts, ['before', 'after'], 'what was published while Redis was down is lost; nothing else');
    assert.deepEqual(received.controls, [{ kind: 'device_live', deviceId: 2, key: 'after' }], 'the control channel was subscribed again too');
    assert.equal(await a.bus.ping(), true);
    await close();
  });

  it('loses what is published while the subscriber connection is cut, and keeps delivering after it reconnects', async () => {
    const { a, b, received, close } = await twoNodes();
    await b.broker.subscribe('t:1');
    a.broker.publish('t:1', 'before');
    await received.text('before');

    const back = next(b.bus.subscriber, 'ready');
    // One pipeline on a's command connection: Redis cuts the subscribers, then runs the PUBLISH with nobody listening.
    const killed = a.bus.commands.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']);
    a.broker.publish('t:1', 'into the gap');
    assert.ok(Number(await killed) >= 2, 'both nodes\u2019 subscriber connections were cut');
    await back;
    a.broker.publish('t:1', 'after');
    await received.text('after');
    assert.deepEqual(received.texts, ['before', 'after']);
    assert.equal(a.broker.dropped, 0, 'Redis took the publication: it was lost on the bus, not refused');
    await close();
  });

  it('subscribes a channel asked for while Redis is down once Redis is back, and resolves then', async () => {
    const { a, b, received, close } = await twoNodes();
    const lost = next(b.bus.subscriber, 'error');
    const back = allBack([a, b]);
    await server.stop();
    await lost;
    let acknowledged = false;
    const subscribing = b.broker.subscribe('u:4').then(() => {
      acknowledged = true;
    });
    assert.equal(b.broker.subscribed('u:4'), true);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(acknowledged, false, 'not before Redis acknowledged it');
    await server.start();
    await subscribing;
    assert.equal(acknowledged, true);
    await back;
    a.broker.publish('u:4', 'hello');
    await received.text('hello');
    await close();
  });
});

describe('The Redis broker when a SUBSCRIBE or UNSUBSCRIBE is lost with its connection', () => {
  /** Node a straight to Redis; node b through a proxy that can swallow Redis's answers and cut b's connections. */
  async function throughProxy(): Promise<{ a: BusNode; b: BusNode; proxy: TcpProxy; received: Received; close: () => Promise<void> }> {
    const prefix = freshPrefix();
    const proxy = await TcpProxy.start(server.port);
    const a = await startBusNode(server.url, prefix, 'a');
    const b = await startBusNode(`redis://127.0.0.1:${proxy.port}`, prefix, 'b');
    const received = new Received();
    b.broker.run(received);
    return {
      a,
      b,
      proxy,
      received,
      close: async () => {
        for (const node of [a, b]) {
          await node.broker.close();
          await node.bus.close();
        }
        await proxy.close();
      },
    };
  }

  it('sends a SUBSCRIBE again when its answer was lost with the connection (node-redis forgets it), and resolves once Redis acknowledged it', async () => {
    const { a, b, proxy, received, close } = await throughProxy();
    proxy.stall('replies');
    let acknowledged = false;
    const subscribing = b.broker.subscribe('t:7').then(() => {
      acknowledged = true;
    });
    // The SUBSCRIBE reaches Redis; its answer does not come back. Once a PING on the same connection went out behind it, cut.
    const pinged = b.bus.subscriber.ping().catch(() => 'cut');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(acknowledged, false);
    const back = next(b.bus.subscriber, 'ready');
    proxy.cut();
    assert.equal(await pinged, 'cut');
    await back;
    await subscribing;
    a.broker.publish('t:7', 'reached');
    await received.text('reached');
    await close();
  });

  it('sends an UNSUBSCRIBE again when its answer was lost with the connection (node-redis would subscribe the channel again)', async () => {
    const { a, b, proxy, close } = await throughProxy();
    const channel = `${b.bus.prefix}t:8`;
    const subscribers = async (): Promise<number> => {
      const counts = (await a.bus.commands.pubSubNumSub(channel)) as Record<string, number>;
      return Number(counts[channel] ?? 0);
    };
    await b.broker.subscribe('t:8');
    assert.equal(await subscribers(), 1);
    proxy.stall('replies');
    b.broker.unsubscribe('t:8');
    const pinged = b.bus.subscriber.ping().catch(() => 'cut');
    await new Promise((resolve) => setImmediate(resolve));
    const back = next(b.bus.subscriber, 'ready');
    proxy.cut();
    await pinged;
    await back;
    // The broker's UNSUBSCRIBE went out at 'ready', before this PING on the same connection.
    await b.bus.subscriber.ping();
    assert.equal(await subscribers(), 0);
    assert.equal(b.broker.subscribed('t:8'), false);
    await close();
  });
});

describe('RedisBus.run', () => {
  it('keeps a command\u2019s own reply error as it is (only a connection that is down becomes BusUnavailableError)', async () => {
    const bus = await openRedisBus(server.url, { prefix: freshPrefix(), node: 'n', log: createLogger('silent') });
    await assert.rejects(bus.run((client) => client.sendCommand(['NO-SUCH-COMMAND'])), (error: unknown) => {
      assert.ok(!(error instanceof BusUnavailableError));
      assert.match(String(error), /unknown command/i);
      return true;
    });
    assert.equal(await bus.run((client) => client.ping()), 'PONG');
    await bus.close();
    await assert.rejects(bus.run((client) => client.ping()), BusUnavailableError);
  });
});

describe('Starting the Redis bus', () => {
  const log = createLogger('silent');

  it('fails with BusStartError naming host:port, without the password, when nothing listens there', async () => {
    const port = await freeLocalPort();
    const error = await openRedisBus(`redis://chatd:s3cret-pw@127.0.0.1:${port}`, { prefix: 'chatd:', node: 'n', log }).then(
      () => assert.fail('started'),
      (error: unknown) => error,
    );
    assert.ok(error instanceof BusStartError, String(error));
    assert.match(error.message, new RegExp(`^cannot reach Redis at redis://chatd(:\\*+)?@127\\.0\\.0\\.1:${port}: `));
    assert.doesNotMatch(error.message, /s3cret-pw/);
  });

  it('fails with BusStartError when Redis refuses the password, without showing it, and starts with the right one', async () => {
    // A Redis without requirepass takes any password: this one asks for one while the test runs.
    const admin = await openRedisBus(server.url, { prefix: 'chatd:', node: 'admin', log });
    await admin.run((client) => client.configSet('requirepass', 'right-pw'));
    try {
      const error = await openRedisBus(`redis://:s3cret-pw@127.0.0.1:${server.port}`, { prefix: 'chatd:', node: 'n', log }).then(
        () => assert.fail('started'),
        (error: unknown) => error,
      );
      assert.ok(error instanceof BusStartError, String(error));
      assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
      assert.doesNotMatch(error.message, /s3cret-pw/);
      const good = await openRedisBus(`redis://:right-pw@127.0.0.1:${server.port}`, { prefix: 'chatd:', node: 'n', log });
      assert.equal(await good.ping(), true);
      assert.doesNotMatch(good.label, /right-pw/);
      await good.close();
    } finally {
      await admin.run((client) => client.configSet('requirepass', ''));
      await admin.close();
    }
  });

  it('refuses a URL that is not redis://, without echoing it', async () => {
    await assert.rejects(openRedisBus('postgres://u:pw@db/x', { prefix: 'chatd:', node: 'n', log }), (error: unknown) => {
      assert.ok(error instanceof BusStartError);
      assert.doesNotMatch(error.message, /:pw@/);
      return true;
    });
  });
});
