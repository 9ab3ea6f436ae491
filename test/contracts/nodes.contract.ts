import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceLinks, Link } from '../../src/services/live/device-links.js';
import type { NodeDirectory } from '../../src/services/live/nodes.js';

/** One node of the fixture: its directory and its device links, over the state every node shares. */
export interface NodeView {
  readonly directory: NodeDirectory;
  readonly links: DeviceLinks;
}

/** Nodes `a`, `b` and `c` of one deployment (in this order), with a short heartbeat TTL. */
export interface NodesFixture {
  readonly nodes: readonly [NodeView, NodeView, NodeView];
  /** Resolves once every heartbeat made so far has lapsed (a fake clock moves past the TTL; Redis expires its keys itself). */
  lapse(): Promise<void>;
  close(): Promise<void>;
}

function link(key: string, deviceId: number): Link {
  return { key, deviceId, userId: 10 };
}

function byDevice<T extends { deviceId: number }>(list: T[]): T[] {
  return [...list].sort((x, y) => x.deviceId - y.deviceId);
}

/** What every NodeDirectory must do, with the DeviceLinks of the same implementation (which keep the liveness it reads). */
export function nodesContract(name: string, make: () => Promise<NodesFixture>): void {
  describe(`NodeDirectory contract: ${name}`, () => {
    it('a node whose heartbeat lapsed is dead to every other node, never to itself, until it heartbeats again', async () => {
      const fixture = await make();
      const [a, b] = fixture.nodes;
      assert.equal(await a.directory.heartbeat(), true, 'the first heartbeat registers the node');
      assert.equal(await b.directory.heartbeat(), true);
      assert.deepEqual(await b.directory.deadNodes(), [], 'fresh heartbeats');
      await fixture.lapse();
      assert.deepEqual(await b.directory.deadNodes(), ['a']);
      assert.deepEqual(await a.directory.deadNodes(), ['b']);
      assert.equal(await b.directory.heartbeat(), true, 'lapsed, not forgotten: still registered');
      assert.deepEqual(await a.directory.deadNodes(), []);
      assert.equal(await a.directory.heartbeat(), true);
      assert.deepEqual(await b.directory.deadNodes(), []);
      await fixture.close();
    });

    it("lists the liveness a node's links hold, as the device links of any node change it", async () => {
      const fixture = await make();
      const [a, b] = fixture.nodes;
      const [a1, a2, b1, b2] = [link('a:1', 1), link('a:2', 2), link('b:1', 3), link('b:2', 2)];
      for (const l of [a1, a2]) a.links.attach(l);
      for (const l of [b1, b2]) b.links.attach(l);
      await a.links.markLive(a1);
      await a.links.markLive(a2);
      await b.links.markLive(b1);
      assert.deepEqual(byDevice(await b.directory.liveDevicesOf('a')), [{ deviceId: 1, key: 'a:1' }, { deviceId: 2, key: 'a:2' }]);
      assert.equal(await b.links.endLiveness(1), 'a:1');
      await b.links.markLive(b2);
      assert.deepEqual(await a.directory.liveDevicesOf('a'), [], "ended by another node, then taken by another node's link");
      assert.deepEqual(byDevice(await a.directory.liveDevicesOf('b')), [{ deviceId: 2, key: 'b:2' }, { deviceId: 3, key: 'b:1' }]);
      assert.equal(await b.links.detach(b1), true);
      assert.deepEqual(await a.directory.liveDevicesOf('b'), [{ deviceId: 2, key: 'b:2' }]);
      assert.deepEqual(await a.directory.liveDevicesOf('z'), [], 'a node never seen holds nothing');
      await fixture.close();
    });

    it('a survivor releases what a dead node held and forgets it; the dead node, back, learns it was forgotten', async () => {
      const fixture = await make();
      const [a, b] = fixture.nodes;
      await a.directory.heartbeat();
      await b.directory.heartbeat();
      const held = link('a:1', 1);
      a.links.attach(held);
      await a.links.markLive(held);
      await fixture.lapse();
      await b.directory.heartbeat();
      assert.deepEqual(await b.directory.deadNodes(), ['a']);
      for (const { deviceId, key } of await b.directory.liveDevicesOf('a')) {
        assert.equal(await b.links.release(deviceId, key), true, 'released by key, with compare-and-delete');
      }
      assert.deepEqual(await b.directory.liveDevicesOf('a'), []);
      assert.equal(await b.links.endLiveness(1), undefined);
      await b.directory.forget('a');
      await b.directory.forget('a');
      assert.deepEqual(await b.directory.deadNodes(), [], 'forgotten (twice is once)');
      assert.equal(await a.links.detach(held), false, 'its link, closed late, hands nothing over');
      assert.equal(await a.directory.heartbeat(), false, 'the node was forgotten while it was away');
      assert.equal(await a.directory.heartbeat(), true, 'and is registered again');
      assert.deepEqual(await b.directory.deadNodes(), []);
      await fixture.close();
    });

    it('two survivors sweeping one dead node at once release each device once', async () => {
      const fixture = await make();
      const [a, b, c] = fixture.nodes;
      for (const node of fixture.nodes) await node.directory.heartbeat();
      const held = [link('a:1', 1), link('a:2', 2), link('a:3', 3)];
      for (const l of held) {
        a.links.attach(l);
        await a.links.markLive(l);
      }
      await fixture.lapse();
      await Promise.all([b.directory.heartbeat(), c.directory.heartbeat()]);
      const sweep = async (survivor: NodeView): Promise<number> => {
        let released = 0;
        for (const dead of await survivor.directory.deadNodes()) {
          const results = await Promise.all((await survivor.directory.liveDevicesOf(dead)).map(({ deviceId, key }) => survivor.links.release(deviceId, key)));
          released += results.filter(Boolean).length;
          await survivor.directory.forget(dead);
        }
        return released;
      };
      const released = await Promise.all([sweep(b), sweep(c)]);
      assert.equal(released[0] + released[1], 3, `released: ${String(released)}`);
      assert.deepEqual(await b.directory.deadNodes(), []);
      assert.deepEqual(await c.directory.liveDevicesOf('a'), []);
      await fixture.close();
    });
  });
}
