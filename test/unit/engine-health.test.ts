import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import pino from 'pino';
import { type EngineHealth, checkEngines } from '../../src/app/engines.js';
import { RuntimeMetrics } from '../../src/metrics.js';
import { addHealthRoutes } from '../../src/transport/http/health.js';
import { Router } from '../../src/transport/http/router.js';

/** An engine whose answer the test sets; `hang` never answers, as a PostgreSQL behind a dropped route. */
function engine(name: EngineHealth['name'], role: EngineHealth['role'], answer: 'up' | 'down' | 'throws' | 'hang', latency?: EngineHealth['latency']): EngineHealth {
  return {
    name,
    role,
    ping: () => {
      if (answer === 'hang') return new Promise<boolean>(() => {});
      if (answer === 'throws') return Promise.reject(new Error('connection refused'));
      return Promise.resolve(answer === 'up');
    },
    latency: latency ?? (() => undefined),
  };
}

const timed = () => ({ p50Ms: 1.25, p99Ms: 8.5, count: 200 });

async function readyz(engines: readonly EngineHealth[], ready = true): Promise<{ status: number; body: unknown }> {
  const router = new Router(pino({ level: 'silent' }), false);
  addHealthRoutes(router, { databaseReachable: async () => true, ready: () => ready, engines: () => checkEngines(engines, 50) });
  const response = await router.handle(new Request('http://chatd/readyz'), { remoteAddress: '127.0.0.1' });
  return { status: response.status, body: await response.json() };
}

describe('engine health', () => {
  it('counts an engine that throws or does not answer in time as down, without waiting for it', async () => {
    const states = await checkEngines([engine('postgres', 'storage', 'throws'), engine('redis', 'bus', 'hang')], 50);
    assert.deepEqual(
      states.map((state) => [state.role, state.engine, state.ok]),
      [
        ['storage', 'postgres', false],
        ['bus', 'redis', false],
      ],
    );
  });

  it('/readyz answers 200 with every engine and its latency while all answer', async () => {
    const answer = await readyz([engine('postgres', 'storage', 'up', timed), engine('redis', 'bus', 'up', timed)]);
    assert.equal(answer.status, 200);
    assert.deepEqual(answer.body, {
      status: 'ready',
      engines: {
        storage: { engine: 'postgres', ok: true, latency_ms: { p50: 1.25, p99: 8.5 }, round_trips: 200 },
        bus: { engine: 'redis', ok: true, latency_ms: { p50: 1.25, p99: 8.5 }, round_trips: 200 },
      },
    });
  });

  it('/readyz answers 503 naming the engine that is down', async () => {
    const answer = await readyz([engine('postgres', 'storage', 'up'), engine('redis', 'bus', 'down')]);
    assert.equal(answer.status, 503);
    assert.deepEqual(answer.body, { status: 'unavailable', engines: { storage: { engine: 'postgres', ok: true }, bus: { engine: 'redis', ok: false } } });
  });

  it('/readyz answers 503 not_ready while starting or stopping, whatever the engines say', async () => {
    const answer = await readyz([engine('sqlite', 'storage', 'up')], false);
    assert.deepEqual(answer, { status: 503, body: { status: 'not_ready' } });
  });

  it('/metrics exports each engine\'s state and its latency quantiles in seconds', async () => {
    const engines = [engine('postgres', 'storage', 'up', timed), engine('redis', 'bus', 'down')];
    const metrics = new RuntimeMetrics({
      writes: () => ({ transactions: 0, writes: 0, seconds: 0 }),
      connections: () => 0,
      engines: () => checkEngines(engines, 50),
    });
    try {
      const lines = (await metrics.render()).split('\n');
      for (const line of [
        'chatd_engine_up{role="storage",engine="postgres"} 1',
        'chatd_engine_up{role="bus",engine="redis"} 0',
        'chatd_engine_latency_seconds{role="storage",engine="postgres",quantile="0.5"} 0.00125',
        'chatd_engine_latency_seconds{role="storage",engine="postgres",quantile="0.99"} 0.0085',
        'chatd_engine_round_trips_total{role="storage",engine="postgres"} 200',
      ]) {
        assert.ok(lines.includes(line), `missing: ${line}`);
      }
      assert.ok(!lines.some((line) => line.startsWith('chatd_engine_latency_seconds{role="bus"')), 'no latency for an engine without samples');
    } finally {
      metrics.stop();
    }
  });
});
