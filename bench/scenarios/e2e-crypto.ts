import { generateAccount, generateDevice, isCertified, publication, verifyDevice } from '../../src/client/device-keys.js';
import { decode } from '../../src/client/e2e-bytes.js';
import { type Binding, type Recipient, decryptEnvelope, readEnvelope as openEnvelope, sealEnvelope, signatureValid, unsealKey } from '../../src/client/envelope.js';
import { type Sodium, loadSodium } from '../../src/client/sodium.js';
import { readEnvelope as serverReadEnvelope } from '../../src/services/e2e-envelope.js';
import type { Result, Scenario } from '../lib/scenario.js';

/**
 * What end-to-end encryption costs per message, in this process (no server):
 * the SDK sealing a ~200-byte body for a thread of N devices and opening it on
 * one of them (signature, key commitment, sealed key, decryption), checking a
 * device the server reports (its self-signature and its owner's certificate),
 * and the server reading the envelope's shape on a send.
 *
 * The loop takes any number of implementations and runs their rounds
 * interleaved (A B A B …), so that a slow spell of this shared machine falls
 * on all of them alike; each figure is the median of the rounds, with their
 * range. The scenario runs the current code alone; a before/after comparison
 * passes an older implementation too (bench/README.md, issue 17).
 */

/** One thread of `devices` devices as an implementation sets it up: every call does the whole work once and checks it. */
export interface E2eThread {
  /** Seals message `i` for every device of the thread; returns the envelope. */
  seal(i: number): unknown;
  /** Opens (verifies and decrypts) an envelope sealed by `seal` on one of the receiving devices; throws unless it opens to the body. */
  open(envelope: unknown): void;
  /** The server's read of the envelope (JSON, as sent) on a send; throws when it refuses it. */
  serverRead(bodyJson: string): void;
}

export interface E2eImplementation {
  readonly label: string;
  thread(devices: number): E2eThread;
  /** Checks one device entry the server reports, as the SDK does when it learns the device; throws unless it passes. */
  device(): () => void;
}

export interface E2eFigure {
  readonly label: string;
  readonly setting: string;
  readonly unit: 'msg' | 'device';
  /** µs per operation, one per round. */
  readonly rounds: number[];
  readonly envelopeBytes?: number;
}

export const BODY = { text: 'x'.repeat(180) };
const THREAD_ID = 42;
const SENDER_USER = 7;

/**
 * µs per call of `work`, called until `ms` of this process's CPU time have
 * passed: CPU time, not wall time, so that the time this core spends on other
 * processes (other engineers' tests on a shared machine) is not counted.
 */
function timed(work: (i: number) => void, ms: number): number {
  let calls = 0;
  const started = process.cpuUsage();
  let elapsedUs = 0;
  do {
    for (let batch = 0; batch < 4; batch++) work(calls++);
    const used = process.cpuUsage(started);
    elapsedUs = used.user + used.system;
  } while (elapsedUs < ms * 1000);
  return elapsedUs / calls;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

function order(count: number, round: number): number[] {
  const indexes = Array.from({ length: count }, (_, i) => i);
  return round % 2 === 0 ? indexes : indexes.reverse();
}

/**
 * Runs every measurement of every implementation, round by round, the
 * implementations taking turns within each round. The first round warms the
 * code up and is not counted.
 */
export function measureE2e(implementations: readonly E2eImplementation[], options: { quick: boolean; log: (line: string) => void }): E2eFigure[] {
  const sizes = [2, 10, 100];
  const rounds = options.quick ? 3 : 11;
  const roundMs = options.quick ? 40 : 100;
  const threads = implementations.map((implementation) => sizes.map((size) => implementation.thread(size)));
  const devices = implementations.map((implementation) => implementation.device());
  const samples = implementations.map((implementation) => ({ implementation, figures: new Map<string, E2eFigure>() }));
  const record = (index: number, setting: string, unit: 'msg' | 'device', value: number, envelopeBytes?: number): void => {
    const { implementation, figures } = samples[index] as (typeof samples)[number];
    const figure = figures.get(setting) ?? { label: implementation.label, setting, unit, rounds: [], ...(envelopeBytes === undefined ? {} : { envelopeBytes }) };
    figure.rounds.push(value);
    figures.set(setting, figure);
  };
  for (let round = 0; round <= rounds; round++) {
    const counted = round > 0;
    for (const [s, size] of sizes.entries()) {
      // A B, then B A in the next round: neither goes first every time.
      for (const index of order(implementations.length, round)) {
        const thread = threads[index]?.[s] as E2eThread;
        const sealUs = timed((i) => thread.seal(i), roundMs);
        const envelope = thread.seal(0);
        const json = JSON.stringify(envelope);
        const openUs = timed(() => thread.open(envelope), roundMs);
        const serverUs = timed(() => thread.serverRead(json), roundMs / 4);
        if (!counted) continue;
        record(index, `seal, ${size} devices`, 'msg', sealUs, Buffer.byteLength(json));
        record(index, `open, ${size} devices`, 'msg', openUs);
        record(index, `server readEnvelope, ${size} keys`, 'msg', serverUs);
      }
    }
    for (const index of order(implementations.length, round)) {
      const us = timed(devices[index] as () => void, roundMs / 2);
      if (counted) record(index, 'device keys checked when learned', 'device', us);
    }
    options.log(`  round ${round}/${rounds}${counted ? '' : ' (warm-up, not counted)'}`);
  }
  return samples.flatMap(({ figures }) => [...figures.values()]);
}

/** The protocol-2 SDK code (src/client/envelope.ts, device-keys.ts) and the server's envelope check (src/services/e2e-envelope.ts). */
export function protocol2(sodium: Sodium): E2eImplementation {
  return {
    label: 'protocol 2',
    thread(size) {
      const sender = generateDevice(sodium, 1);
      const receiver = generateDevice(sodium, 2);
      const others = Array.from({ length: size - 2 }, (_, i) => generateDevice(sodium, i + 3));
      const recipients: Recipient[] = [sender, receiver, ...others].map((device) => ({ device_id: device.device_id, encKey: decode(sodium, device.enc_public) }));
      const signSecret = decode(sodium, sender.sign_secret);
      const signKey = decode(sodium, sender.sign_public);
      const pairs = [{ public: decode(sodium, receiver.enc_public), secret: decode(sodium, receiver.enc_secret) }];
      const binding = (i: number): Binding => ({ thread_id: THREAD_ID, client_msg_id: `m${i}`, sender_user_id: SENDER_USER });
      return {
        seal: (i) => sealEnvelope(sodium, { device_id: sender.device_id, signSecret }, binding(i), BODY, recipients),
        // What MessageOpener.open does with the envelope once it has the signer (src/client/message-opener.ts).
        open(body) {
          const envelope = openEnvelope(body);
          if (!envelope) throw new Error('not an envelope');
          if (!signatureValid(sodium, envelope, binding(0), signKey)) throw new Error('bad signature');
          const key = unsealKey(sodium, envelope, receiver.device_id, pairs);
          if (!key) throw new Error('no key for the receiving device');
          const opened = decryptEnvelope(sodium, envelope, binding(0), key);
          if (typeof opened !== 'object' || (opened.body as typeof BODY).text !== BODY.text) throw new Error(`did not open: ${String(opened)}`);
        },
        serverRead(json) {
          if (serverReadEnvelope(json).deviceIds.length !== size) throw new Error('the server read another number of keys');
        },
      };
    },
    device() {
      const { account } = generateAccount(sodium, SENDER_USER);
      const secrets = generateDevice(sodium, 3);
      const published = publication(sodium, secrets, SENDER_USER, account);
      const keys = { user_id: SENDER_USER, device_id: secrets.device_id, ...published, revoked: false };
      // DeviceDirectory.learnDevice: the self-signature (verifyDevice), then the certificate under the pinned account key.
      return () => {
        const device = verifyDevice(sodium, keys);
        if (!device || !isCertified(sodium, device, device.account_signature, account.account_key)) throw new Error('the device did not verify');
      };
    },
  };
}

function toResults(figures: readonly E2eFigure[]): Result[] {
  return figures.map((figure) => ({
    scenario: 'e2e-crypto',
    setting: figure.setting,
    figures: {
      [figure.unit === 'msg' ? 'µs per msg' : 'µs per device']: median(figure.rounds),
      'min µs': Math.min(...figure.rounds),
      'max µs': Math.max(...figure.rounds),
      ...(figure.envelopeBytes === undefined ? {} : { 'envelope bytes': figure.envelopeBytes }),
    },
    // In this process, on the generator's core: no server, and the CPU is the figure itself.
    serverCpu: Number.NaN,
    generatorCpu: Number.NaN,
    valid: true,
  }));
}

export const e2eCrypto: Scenario = {
  name: 'e2e-crypto',
  summary: 'in-process, libsodium: seal and open of a ~200-byte e2e message for 2, 10 and 100 devices, checking a device\'s keys, the server\'s envelope read',
  async run(context) {
    const sodium = await loadSodium();
    return toResults(measureE2e([protocol2(sodium)], context));
  },
};
