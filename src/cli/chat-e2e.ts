import { renderUnicodeCompact } from 'uqr';
import type { ChatClient } from '../client/node.js';
import type { Terminal } from './chat-render.js';

/** Reads the user's answer to a question: the next input line (undefined at the end of input). */
export type Ask = (question: string) => Promise<string | undefined>;

/**
 * `chatd chat --encryption`: the commands that concern end-to-end encryption
 * (docs/e2e.md) — safety numbers, this account's devices, approving a new
 * one, sharing history with it — and the lines for what the client reports
 * about them.
 */
export class ChatEncryption {
  constructor(
    private readonly client: ChatClient,
    private readonly terminal: Terminal,
  ) {
    const print = (line: string): void => terminal.print(line);
    client.on('account', ({ state }) => {
      if (state === 'pending') {
        print(`* this device waits for approval: on another device of yours, /approve ${client.deviceId ?? '?'} and type this code:`);
        print(`  ${safeFingerprint(client)}`);
      } else if (state === 'approved') print('* this device is approved: it reads and sends encrypted messages');
    });
    client.on('device_request', ({ device_id: deviceId }) => print(`* device ${deviceId} wants to join your account: /approve ${deviceId} (and type the code it shows) or ignore it`));
    client.on('history', ({ from_device: from, parts_received: received, parts, messages }) => {
      print(`* history from device ${from}: part ${received} of ${parts} (${messages} messages)${received === parts ? ': /open a thread to read it' : ''}`);
    });
    client.on('history_progress', ({ to_device: to, part, parts }) => print(`* history to device ${to}: part ${part} of ${parts} sent`));
  }

  /** Runs one of the commands; false when `name` is not one of them. */
  async command(name: string, args: readonly string[], ask: Ask): Promise<boolean> {
    switch (name) {
      case '/verify':
        await this.verify(single(args, '/verify USER').replace(/^@/, ''), ask);
        return true;
      case '/devices':
        await this.devices();
        return true;
      case '/approve':
        await this.approve(deviceId(single(args, '/approve DEVICE')), ask);
        return true;
      case '/share-history':
        await this.shareHistory(deviceId(single(args, '/share-history DEVICE')));
        return true;
      default:
        return false;
    }
  }

  /** The safety number with `username` (and its QR code), then the question whether it matched. */
  private async verify(username: string, ask: Ask): Promise<void> {
    const peer = (await this.client.openDirect(username)).peer;
    if (!peer) throw new Error(`no direct thread with ${username}`);
    const safety = await this.client.safetyNumber(peer.id);
    const print = (line: string): void => this.terminal.print(line);
    print(`safety number with ${peer.username}${safety.verified ? ' (verified)' : ''}:`);
    const groups = safety.number.split(' ');
    for (let row = 0; row < groups.length; row += 4) print(`  ${groups.slice(row, row + 4).join(' ')}`);
    for (const line of renderUnicodeCompact(safety.qr, { border: 1 }).split('\n')) print(line);
    const answer = await ask(`compare it with ${peer.username}'s (in person or on a call). Same number? Type yes to mark ${peer.username} verified:`);
    if (answer?.trim().toLowerCase() === 'yes') {
      await this.client.markVerified(peer.id);
      print(`${peer.username} is verified: if their identity ever changes, messages to them wait until you accept it`);
    } else {
      print(`${peer.username} not marked verified`);
    }
  }

  private async devices(): Promise<void> {
    for (const device of await this.client.devices()) {
      this.terminal.print(`device ${device.device_id} (${device.state === 'this' ? 'this one' : device.state}): ${device.fingerprint}`);
    }
  }

  private async approve(id: number, ask: Ask): Promise<void> {
    const code = await ask(`type the code device ${id} shows (12 groups of 5 digits):`);
    if (!code?.trim()) return void this.terminal.print(`device ${id} not approved`);
    await this.client.approveDevice(id, { fingerprint: code });
    this.terminal.print(`device ${id} approved; /share-history ${id} lets it read your past messages`);
  }

  private async shareHistory(id: number): Promise<void> {
    const { messages, truncated } = await this.client.shareHistory(id);
    this.terminal.print(`shared the keys of ${messages} messages with device ${id}${truncated ? ' (the newest only: the limit was reached)' : ''}`);
  }
}

function safeFingerprint(client: ChatClient): string {
  try {
    return client.ownFingerprint();
  } catch {
    return '(not known yet: /devices shows it)';
  }
}

function single(args: readonly string[], usage: string): string {
  if (args.length !== 1) throw new Error(`usage: ${usage}`);
  return args[0] as string;
}

function deviceId(text: string): number {
  if (!/^\d+$/.test(text)) throw new Error(`a device id is a number (/devices lists them), got "${text}"`);
  return Number(text);
}

export const ENCRYPTION_HELP = [
  '  /verify USER             the safety number with USER (and its QR code); mark them verified',
  '  /devices                 your devices: this one, approved, pending, revoked',
  '  /approve DEVICE          approve a new device of yours (type the code it shows)',
  '  /share-history DEVICE    let an approved device read your past encrypted messages',
];
