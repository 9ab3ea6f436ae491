import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request, signUp } from '../helpers/http.js';
import { type ServerProcess, startServer } from '../helpers/processes.js';
import { tempDir, writeConfig } from '../helpers/tmp.js';
import { connectAuthenticated } from '../helpers/ws.js';

/** The exposition text as name{labels} → value; fails on a line that is neither a comment nor a sample. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-z_]+(?:\{[a-z_]+="[^"]+"(?:,[a-z_]+="[^"]+")*\})?) (\S+)$/.exec(line);
    assert.ok(match, `not a Prometheus sample: ${line}`);
    samples.set(match[1] as string, Number(match[2]));
  }
  return samples;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return parse(await response.text());
}

const value = (samples: Map<string, number>, name: string): number => {
  const found = samples.get(name);
  assert.ok(found !== undefined, `${name} is missing`);
  return found;
};

describe('GET /metrics', () => {
  let server: ServerProcess;

  before(async () => {
    const dir = tempDir();
    const config = writeConfig(dir, '[accounts]\nregistration = "open"\n[metrics]\nenabled = true\n');
    server = await startServer(['--data', `${dir}/data`, '--config', config]);
  });
  after(() => server.stop());

  it('counts the write transactions a send commits in, and the connection it came on', async () => {
    const alice = await signUp(server.url, 'alice');
    const bob = await signUp(server.url, 'bob');
    const before = await scrape(server.url);
    assert.equal(value(before, 'chatd_websocket_connections'), 0);

    const { socket } = await connectAuthenticated(server.wsUrl, alice.token);
    const thread = (await socket.expect({ type: 'direct_open', user_id: bob.userId }, 'thread')).thread.id;
    await socket.expect({ type: 'send', thread_id: thread, client_msg_id: 'm1', body: { text: 'hi' } }, 'ack');
    const after = await scrape(server.url);
    socket.close();

    assert.equal(value(after, 'chatd_websocket_connections'), 1);
    // The thread's creation and the send, at least: each is a write, each was committed.
    assert.ok(value(after, 'chatd_writes_total') >= value(before, 'chatd_writes_total') + 2);
    assert.ok(value(after, 'chatd_write_transactions_total') > value(before, 'chatd_write_transactions_total'));
    assert.ok(value(after, 'chatd_write_transaction_seconds_total') > value(before, 'chatd_write_transaction_seconds_total'));
    assert.ok(value(after, 'process_cpu_seconds_total') > 0);
    assert.ok(value(after, 'process_resident_memory_bytes') > 1024 * 1024);
    assert.ok(value(after, 'nodejs_heap_used_bytes') > 0);
    assert.ok(value(after, 'chatd_gc_seconds_total') >= 0);
  });

  it('says per engine whether it answers: SQLite for storage, this process\'s memory for the bus, neither with round trips to time', async () => {
    const samples = await scrape(server.url);
    assert.equal(value(samples, 'chatd_engine_up{role="storage",engine="sqlite"}'), 1);
    assert.equal(value(samples, 'chatd_engine_up{role="bus",engine="memory"}'), 1);
    assert.deepEqual([...samples.keys()].filter((name) => name.startsWith('chatd_engine_latency') || name.startsWith('chatd_engine_round_trips')), []);
  });

  it('samples the event-loop delay into a cumulative histogram', async () => {
    const first = value(await scrape(server.url), 'chatd_event_loop_delay_seconds_count');
    // The sampler runs every 10 ms: wait until it has run again, however long that takes here.
    let samples = await scrape(server.url);
    while (value(samples, 'chatd_event_loop_delay_seconds_count') <= first) {
      await new Promise((resolve) => setImmediate(resolve));
      samples = await scrape(server.url);
    }
    const buckets = [...samples].filter(([name]) => name.startsWith('chatd_event_loop_delay_seconds_bucket'));
    assert.equal(buckets.at(-1)?.[0], 'chatd_event_loop_delay_seconds_bucket{le="+Inf"}');
    assert.equal(buckets.at(-1)?.[1], value(samples, 'chatd_event_loop_delay_seconds_count'), 'the +Inf bucket holds every sample');
    for (let i = 1; i < buckets.length; i++) {
      assert.ok((buckets[i]?.[1] as number) >= (buckets[i - 1]?.[1] as number), `buckets are cumulative: ${buckets[i]?.[0]}`);
    }
    assert.ok(value(samples, 'chatd_event_loop_delay_seconds_sum') >= 0);
  });
});

describe('GET /metrics when metrics are off (the default)', () => {
  let server: ServerProcess;
  before(async () => {
    server = await startServer(['--data', `${tempDir()}/data`]);
  });
  after(() => server.stop());

  it('answers 404 like any unknown path', async () => {
    const response = await request(`${server.url}/metrics`);
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'not_found');
  });
});

describe('GET /metrics with metrics.token', () => {
  const token = 'a-token-of-32-characters-or-so-1';
  let server: ServerProcess;
  before(async () => {
    const dir = tempDir();
    const config = writeConfig(dir, `[metrics]\nenabled = true\ntoken = "${token}"\n`);
    server = await startServer(['--data', `${dir}/data`, '--config', config]);
  });
  after(() => server.stop());

  it('answers 401 with a Bearer challenge without the token and with a wrong one, and 200 with it', async () => {
    const attempts: Array<Record<string, string>> = [{}, { authorization: 'Bearer not-the-token-at-all-but-long' }, { authorization: `Basic ${token}` }, { authorization: `Bearer ${token}x` }];
    for (const headers of attempts) {
      const refused = await request(`${server.url}/metrics`, { headers });
      assert.equal(refused.status, 401, JSON.stringify(headers));
      assert.equal(refused.body.error.code, 'unauthorized');
      assert.equal(refused.headers.get('www-authenticate'), 'Bearer realm="chatd metrics"');
    }
    const response = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    assert.equal(response.status, 200);
    assert.ok(parse(await response.text()).has('chatd_websocket_connections'));
  });
});

describe('GET /metrics on a listener of its own (metrics.listen)', () => {
  let server: ServerProcess;
  let metricsUrl: string;
  before(async () => {
    const dir = tempDir();
    const config = writeConfig(dir, '[metrics]\nenabled = true\nlisten = "127.0.0.1:0"\n');
    server = await startServer(['--data', `${dir}/data`, '--config', config]);
    const line = await server.waitForLog((entry) => entry.msg === 'serving /metrics on its own listener');
    metricsUrl = `http://127.0.0.1:${String(line.port)}`;
  });
  after(() => server.stop());

  it('serves /metrics there, and the main port answers 404 for it', async () => {
    assert.notEqual(metricsUrl, server.url);
    assert.ok(value(await scrape(metricsUrl), 'process_resident_memory_bytes') > 0);
    const main = await request(`${server.url}/metrics`);
    assert.equal(main.status, 404);
    assert.equal(main.body.error.code, 'not_found');
  });

  it('serves nothing else there: other paths get 404, other methods 405', async () => {
    assert.equal((await fetch(`${metricsUrl}/healthz`)).status, 404);
    assert.equal((await fetch(`${metricsUrl}/metrics`, { method: 'POST' })).status, 405);
  });
});
