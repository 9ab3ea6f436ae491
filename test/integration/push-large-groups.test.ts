import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { startServer } from '../helpers/processes.js';
import { APNS_KEY_ID, APNS_TEAM_ID, type FakeApns, type TestPki, makeTestPki, startFakeApns } from '../helpers/push-providers.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { type TestSocket, connectAuthenticated } from '../helpers/ws.js';

/**
 * Push for large groups over the real server and the local APNs stand-in:
 * with messages.read_diffusion_above = 2, a group of three is large (it writes
 * no offline-inbox rows). One notification waits for the provider at a time
 * (push.concurrency = 1), so notifications arrive in queue order.
 */

const BUNDLE_ID = 'org.example.chat';
const apnsToken = (n: number): string => n.toString(16).padStart(64, 'b');

let pki: TestPki;
const cleanups: Array<() => Promise<unknown>> = [];
before(() => {
  pki = makeTestPki(tempDir());
});
after(() => Promise.all(cleanups.map((cleanup) => cleanup())));

async function world(): Promise<{ url: string; wsUrl: string; apns: FakeApns }> {
  const dir = tempDir();
  const apns = await startFakeApns(pki);
  const configFile = writeConfig(
    dir,
    `
[accounts]
registration = "open"
[rate_limit]
login_per_address = 100000
[messages]
read_diffusion_above = 2
[push]
concurrency = 1
[apns]
key_file = "${pki.apnsKeyFile}"
key_id = "${APNS_KEY_ID}"
team_id = "${APNS_TEAM_ID}"
bundle_id = "${BUNDLE_ID}"
environment = "sandbox"
connect_to = "localhost:${apns.port}"
`,
  );
  const server = await startServer(['--data', join(dir, 'data'), '--config', configFile], { env: { NODE_EXTRA_CA_CERTS: pki.caFile } });
  cleanups.push(async () => {
    await server.stop();
    await apns.close();
  });
  return { url: server.url, wsUrl: server.wsUrl, apns };
}

let sends = 0;
function send(socket: TestSocket, threadId: number, text: string): Promise<any> {
  return socket.expect({ type: 'send', thread_id: threadId, client_msg_id: `l${++sends}`, kind: 'text', body: { text } }, 'ack');
}

describe('push for large groups', { timeout: 120_000 }, () => {
  it('a device that got a large group message live and dropped without acking gets its notification; the badge leaves a muted thread out', async () => {
    const w = await world();
    const alice = await signUp(w.url, 'alice', 'correct horse', 'phone');
    const bob = await signUp(w.url, 'bob', 'correct horse', 'phone');
    const carol = await signUp(w.url, 'carol', 'correct horse', 'phone');
    const registered = await request(`${w.url}/v1/me/push`, { method: 'PUT', token: bob.token, body: { platform: 'apns', token: apnsToken(1) } });
    assert.equal(registered.status, 200, JSON.stringify(registered.body));
    const a = await connectAuthenticated(w.wsUrl, alice.token);
    const group = (await a.socket.expect({ type: 'group_create', title: 'Climbing', members: [bob.userId, carol.userId] }, 'thread')).thread.id;
    const quiet = (await a.socket.expect({ type: 'group_create', title: 'Quiet', members: [bob.userId, carol.userId] }, 'thread')).thread.id;
    const b = await connectAuthenticated(w.wsUrl, bob.token);
    await b.socket.expect({ type: 'thread_settings', thread_id: quiet, muted: true }, 'thread');
    await send(a.socket, quiet, 'in the muted group');
    await b.socket.nextEvent('message');
    const sent = await send(a.socket, group, 'Saturday at nine?');
    const got = await b.socket.nextEvent('message');
    assert.equal(got.message.seq, sent.seq, 'bob got it live');
    // The socket goes without an ack, as a suspended app's does.
    b.socket.close();
    await b.socket.closed;
    const [record] = await w.apns.waitForRequests(1);
    assert.equal(record?.token, apnsToken(1));
    const payload = record?.payload as any;
    assert.deepEqual(payload.aps.alert, { title: 'Climbing', body: 'alice: Saturday at nine?' });
    assert.equal(payload.thread_id, String(group));
    // The badge: bob's unread in Climbing (its creation notice and the message), not the muted group's.
    const again = await connectAuthenticated(w.wsUrl, bob.token);
    const list = await again.socket.expect({ type: 'threads' }, 'threads');
    const unread = new Map<number, number>(list.threads.map((thread: { id: number; unread: number }) => [thread.id, thread.unread]));
    assert.ok((unread.get(quiet) ?? 0) > 0, 'the muted group has unread messages');
    assert.equal(payload.aps.badge, unread.get(group), 'the badge counts the group, not the muted one');
    assert.equal(list.total_unread, (unread.get(group) ?? 0) + (unread.get(quiet) ?? 0), 'the app total counts both');
    again.socket.close();
    a.socket.close();
  });
});
