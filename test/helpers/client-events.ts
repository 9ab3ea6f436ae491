import {
  type AccountStanding, type ChatClient, type ClientMessage, type DeviceRequest, type HistoryProgress, type HistoryReceived, type IdentityChange,
  type KeyChange, type StatusChange,
} from '../../src/client/node.js';
import { ClientError } from '../../src/client/errors.js';
import { Waiters } from './waiters.js';

/**
 * Everything a ChatClient tells the app, recorded per event and waited on by
 * event (no sleeps, no polling). One recorder for every integration test that
 * drives SDK clients: each list is what one event carried, in order.
 */
export class ClientEvents {
  readonly messages: ClientMessage[] = [];
  readonly statuses: StatusChange[] = [];
  /** The state of every `account` event (pending → approved is what most tests follow) … */
  readonly standings: AccountStanding['state'][] = [];
  /** … and every `account` event whole. */
  readonly accountStandings: AccountStanding[] = [];
  readonly deviceRequests: DeviceRequest[] = [];
  /** The device ids of `deviceRequests`. */
  readonly requests: number[] = [];
  readonly keys: KeyChange[] = [];
  readonly identities: IdentityChange[] = [];
  readonly history: HistoryReceived[] = [];
  readonly progress: HistoryProgress[] = [];
  /**
   * Every `error` event, or with `{ errors: 'alarms' }` only the SDK's typed ones (ClientError, with a `code`;
   * a subclass may then `declare readonly errors: ClientError[]`). Listening also keeps an error from being unhandled.
   */
  readonly errors: Error[] = [];
  /** Connection states in order, and the reasons the ones that ended gave. */
  readonly states: string[] = [];
  readonly endReasons: string[] = [];
  private readonly waiters = new Waiters();

  constructor(
    readonly client: ChatClient,
    options: { errors?: 'all' | 'alarms' } = {},
  ) {
    client.on('message', (message) => this.record(this.messages, message));
    client.on('status', (change) => this.record(this.statuses, change));
    client.on('account', (standing) => {
      this.accountStandings.push(standing);
      this.record(this.standings, standing.state);
    });
    client.on('device_request', (request) => {
      this.requests.push(request.device_id);
      this.record(this.deviceRequests, request);
    });
    client.on('keys', (change) => this.record(this.keys, change));
    client.on('identity', (change) => this.record(this.identities, change));
    client.on('history', (received) => this.record(this.history, received));
    client.on('history_progress', (progress) => this.record(this.progress, progress));
    client.on('error', (error) => {
      if (options.errors !== 'alarms' || error instanceof ClientError) this.record(this.errors, error);
    });
    client.on('state', (change) => {
      if (change.reason) this.endReasons.push(change.reason);
      this.record(this.states, change.state);
    });
  }

  /**
   * Resolves with what `find` finds, now or once an event makes it find
   * something; rejects after `ms` naming `what`, so a regression fails fast
   * instead of hanging the suite.
   */
  until<T>(find: () => T | undefined, what = 'an event', ms = 15_000): Promise<T> {
    return this.waiters.until(find, ms, () => this.describeTimeout(what, ms));
  }

  /** The message of that thread whose (decrypted) text is `text`. */
  text(threadId: number, text: string): Promise<ClientMessage> {
    return this.until(() => this.messages.find((m) => m.thread_id === threadId && (m.body as { text?: string })?.text === text), `the message "${text}" in thread ${threadId}`);
  }

  /** The rejection's message when `what` did not come within `ms`: a subclass may add what it knows. */
  protected describeTimeout(what: string, ms: number): string {
    return `waited ${ms} ms for ${what}: it never came`;
  }

  /** Adds `value` to `list` and lets every waiter look again. */
  protected record<T>(list: T[], value: T): void {
    list.push(value);
    this.waiters.notify();
  }
}
