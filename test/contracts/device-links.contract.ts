import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { DeviceLinks, Link } from '../../src/services/live/device-links.js';

/** Device links of each node over one shared state: one node in memory, two or more for a networked implementation. */
export interface DeviceLinksFixture {
  readonly nodes: readonly DeviceLinks[];
  close(): Promise<void>;
}

function link(key: string, deviceId: number, userId: number): Link {
  return { key, deviceId, userId };
}

/**
 * What every DeviceLinks must do. The cases for several nodes run where the
 * fixture gives two or more views of one liveness store (two MemoryDeviceLinks
 * sharing a map, or two RedisDeviceLinks on one Redis).
 */
export function deviceLinksContract(name: string, make: () => Promise<DeviceLinksFixture>): void {
  describe(`DeviceLinks contract: ${name}`, () => {
    it("lists a node's attached links by device and by user until they are detached", async () => {
      const fixture = await make();
      const links = fixture.nodes[0] as DeviceLinks;
      const [phone, laptop, other] = [link('a:1', 1, 10), link('a:2', 2, 10), link('a:3', 3, 11)];
      for (const l of [phone, laptop, other, phone]) links.attach(l);
      assert.deepEqual(links.ofDevice(1), [phone], 'attaching twice lists once');
      assert.deepEqual(links.ofUser(10), [phone, laptop]);
      assert.equal(links.isLocal('a:2'), true);
      assert.equal(await links.detach(laptop), false, 'never live');
      assert.deepEqual(links.ofUser(10), [phone]);
      assert.equal(links.isLocal('a:2'), false);
      assert.deepEqual(links.ofDevice(2), []);
      await fixture.close();
    });

    it('a link marked live hands the liveness over when it is detached, once', async () => {
      const fixture = await make();
      const links = fixture.nodes[0] as DeviceLinks;
      const phone = link('a:1', 1, 10);
      links.attach(phone);
      await links.markLive(phone);
      assert.equal(await links.detach(phone), true);
      assert.equal(await links.detach(phone), false, 'the second detach has nothing to hand over');
      assert.equal(await links.endLiveness(1), undefined);
      await fixture.close();
    });

    it("a new connection ends the old one's liveness; the old one's close then hands nothing over", async () => {
      const fixture = await make();
      const links = fixture.nodes[0] as DeviceLinks;
      const [old, fresh] = [link('a:1', 1, 10), link('a:2', 1, 10)];
      links.attach(old);
      await links.markLive(old);
      links.attach(fresh);
      assert.equal(await links.endLiveness(1), 'a:1', 'the key of the link that held it');
      assert.equal(await links.endLiveness(1), undefined, 'ended once');
      await links.markLive(fresh);
      assert.equal(await links.detach(old), false, 'compare-and-delete: the liveness is the new link’s');
      assert.equal(await links.detach(fresh), true);
      await fixture.close();
    });

    it("forgetting another link's liveness leaves the live link alone", async () => {
      const fixture = await make();
      const links = fixture.nodes[0] as DeviceLinks;
      const phone = link('a:1', 1, 10);
      links.attach(phone);
      await links.markLive(phone);
      links.forgetLiveness(1, 'z:9');
      links.forgetLiveness(2, 'a:1');
      assert.equal(await links.detach(phone), true, 'still live');
      await fixture.close();
    });

    it('liveness is one per device across nodes: a node ends what another node holds', async (t) => {
      const fixture = await make();
      if (fixture.nodes.length < 2) {
        t.skip('one node');
        await fixture.close();
        return;
      }
      const [a, b] = fixture.nodes as [DeviceLinks, DeviceLinks];
      const [onA, onB] = [link('a:1', 1, 10), link('b:1', 1, 10)];
      a.attach(onA);
      await a.markLive(onA);
      b.attach(onB);
      assert.deepEqual(b.ofDevice(1), [onB], "a node lists its own links only");
      assert.equal(b.isLocal('a:1'), false);
      assert.equal(await b.endLiveness(1), 'a:1');
      a.forgetLiveness(1, 'a:1');
      await b.markLive(onB);
      assert.equal(await a.detach(onA), false);
      assert.equal(await b.detach(onB), true);
      await fixture.close();
    });

    it("a node's endLiveness returns the key another node's link holds, and that link's detach then hands nothing over", async (t) => {
      const fixture = await make();
      if (fixture.nodes.length < 2) {
        t.skip('one node');
        await fixture.close();
        return;
      }
      const [a, b] = fixture.nodes as [DeviceLinks, DeviceLinks];
      const onA = link('a:1', 1, 10);
      a.attach(onA);
      await a.markLive(onA);
      assert.equal(await b.endLiveness(1), 'a:1');
      assert.equal(await a.endLiveness(1), undefined, 'ended for every node');
      assert.equal(await a.detach(onA), false);
      assert.deepEqual(a.ofDevice(1), [], 'detached all the same');
      await fixture.close();
    });

    it('two nodes marking one device live at once leave exactly one live link', async (t) => {
      const fixture = await make();
      if (fixture.nodes.length < 2) {
        t.skip('one node');
        await fixture.close();
        return;
      }
      const [a, b] = fixture.nodes as [DeviceLinks, DeviceLinks];
      const [onA, onB] = [link('a:1', 1, 10), link('b:1', 1, 10)];
      a.attach(onA);
      b.attach(onB);
      await Promise.all([a.markLive(onA), b.markLive(onB)]);
      const ended = await a.endLiveness(1);
      assert.ok(ended === 'a:1' || ended === 'b:1', `one of the two: ${String(ended)}`);
      assert.equal(await b.endLiveness(1), undefined, 'and only one');
      await Promise.all([a.markLive(onA), b.markLive(onB)]);
      const detached = await Promise.all([a.detach(onA), b.detach(onB)]);
      assert.equal(detached.filter(Boolean).length, 1, `exactly one detach hands over: ${String(detached)}`);
      await fixture.close();
    });

    it('two nodes ending one liveness at once: one gets the key, the other nothing', async (t) => {
      const fixture = await make();
      if (fixture.nodes.length < 2) {
        t.skip('one node');
        await fixture.close();
        return;
      }
      const [a, b] = fixture.nodes as [DeviceLinks, DeviceLinks];
      const onA = link('a:1', 1, 10);
      a.attach(onA);
      await a.markLive(onA);
      const ended = await Promise.all([a.endLiveness(1), b.endLiveness(1)]);
      assert.deepEqual(ended.filter((key) => key !== undefined), ['a:1']);
      await fixture.close();
    });

    it("a node releases the liveness of another node's link by its key, once (a survivor cleaning up after a dead node)", async (t) => {
      const fixture = await make();
      if (fixture.nodes.length < 2) {
        t.skip('one node');
        await fixture.close();
        return;
      }
      const [a, b] = fixture.nodes as [DeviceLinks, DeviceLinks];
      const [onA, other] = [link('a:1', 1, 10), link('a:2', 2, 10)];
      a.attach(onA);
      a.attach(other);
      await a.markLive(onA);
      await a.markLive(other);
      assert.equal(await b.release(1, 'a:1'), true);
      assert.equal(await b.release(1, 'a:1'), false, 'once');
      assert.equal(await b.release(2, 'a:9'), false, 'a key that is not live releases nothing');
      assert.deepEqual(a.ofDevice(1), [onA], "the other node's list is its own");
      assert.equal(await a.detach(onA), false);
      assert.equal(await a.detach(other), true);
      await fixture.close();
    });
  });
}
