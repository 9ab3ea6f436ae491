import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { classifyApns } from '../../src/push/apns.js';
import { classify, parseRetryAfter } from '../../src/push/fcm.js';
import { isSuspect } from '../../src/push/provider-gate.js';
import type { PushOutcome } from '../../src/push/types.js';

/** What chatd makes of each provider answer (docs/push.md's table), with the errors shaped as the libraries shape them. */

const kind = (outcome: PushOutcome): string => (outcome.kind === 'dead_token' && isSuspect(outcome) ? 'dead_token?' : outcome.kind);

function firebaseError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('FCM answers', () => {
  const table: Array<[string, string, string]> = [
    ['messaging/registration-token-not-registered', 'Requested entity was not found.', 'dead_token'],
    ['messaging/invalid-argument', 'The registration token is not a valid FCM registration token', 'dead_token'],
    ['messaging/invalid-argument', 'Request contains an invalid argument.', 'failed'],
    ['messaging/mismatched-credential', 'SenderId mismatch', 'dead_token?'],
    // A 403 with only the canonical PERMISSION_DENIED: the API disabled, or the service account may not send.
    ['messaging/mismatched-credential', 'Error.', 'provider_error'],
    ['messaging/mismatched-credential', 'Permission \'cloudmessaging.messages.create\' denied on resource', 'provider_error'],
    ['messaging/third-party-auth-error', 'Request had invalid authentication credentials.', 'provider_error'],
    // THIRD_PARTY_AUTH_ERROR: Apple refuses the APNs key stored in the Firebase project, for iOS devices only: no pause (Android goes on).
    ['messaging/third-party-auth-error', 'Auth error from APNS or Web Push Service', 'failed'],
    ['app/invalid-credential', 'Credential implementation provided to initializeApp() via the "credential" property failed to fetch a valid Google OAuth2 access token with the following error: "invalid_grant: Invalid JWT Signature.".', 'provider_error'],
    ['app/invalid-credential', 'Credential implementation provided to initializeApp() via the "credential" property failed to fetch a valid Google OAuth2 access token with the following error: "getaddrinfo EAI_AGAIN oauth2.googleapis.com".', 'retry'],
    ['app/invalid-credential', 'Credential implementation provided to initializeApp() via the "credential" property failed to fetch a valid Google OAuth2 access token with the following error: "Request failed with status code 503".', 'retry'],
    ['messaging/message-rate-exceeded', 'Quota exceeded', 'retry'],
    ['messaging/server-unavailable', 'The service is currently unavailable.', 'retry'],
    ['app/network-timeout', 'timeout', 'retry'],
    ['messaging/payload-size-limit-exceeded', 'too big', 'failed'],
  ];
  for (const [code, message, expected] of table) {
    it(`${code} "${message.slice(0, 60)}" → ${expected}`, () => {
      assert.equal(kind(classify(firebaseError(code, message))), expected);
    });
  }

  it('a 429 or 503 carries the Retry-After seen on the response; other retries do not', () => {
    assert.deepEqual(classify(firebaseError('messaging/message-rate-exceeded', 'Quota exceeded'), 30_000), { kind: 'retry', reason: 'FCM messaging/message-rate-exceeded: Quota exceeded', retryAfterMs: 30_000 });
    assert.equal((classify(firebaseError('app/network-error', 'reset'), 30_000) as { retryAfterMs?: number }).retryAfterMs, undefined);
    assert.equal(parseRetryAfter('120', 0), 120_000);
    assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:01:00 GMT', 30_000), 30_000);
    assert.equal(parseRetryAfter('soon', 0), undefined);
    assert.equal(parseRetryAfter(undefined, 0), undefined);
  });
});

describe('APNs answers', () => {
  const failure = (status: number | undefined, reason?: string, error?: string) => ({
    status,
    ...(reason ? { response: { reason } } : {}),
    ...(error ? { error: new Error(error) } : {}),
  });
  const table: Array<[ReturnType<typeof failure>, boolean, string]> = [
    [failure(410, 'Unregistered'), false, 'dead_token'],
    [failure(410, 'ExpiredToken'), false, 'dead_token'],
    [failure(400, 'BadDeviceToken'), false, 'dead_token?'],
    [failure(400, 'DeviceTokenNotForTopic'), false, 'dead_token?'],
    [failure(400, 'TopicDisallowed'), false, 'provider_error'],
    [failure(400, 'BadTopic'), false, 'provider_error'],
    [failure(400, 'TopicDisallowed'), true, 'failed'],
    [failure(403, 'InvalidProviderToken'), false, 'provider_error'],
    [failure(403, undefined, 'ExpiredProviderToken'), false, 'provider_error'],
    [failure(403, 'BadEnvironmentKeyIdInToken'), false, 'provider_error'],
    [failure(403, 'BadCertificateEnvironment'), false, 'provider_error'],
    [failure(404, 'BadPath'), false, 'provider_error'],
    [failure(429, 'TooManyRequests'), false, 'retry'],
    [failure(500, undefined, 'Error 500, stream ended unexpectedly'), false, 'retry'],
    [failure(503, 'ServiceUnavailable'), false, 'retry'],
    [failure(undefined, undefined, 'apn write timeout'), false, 'retry'],
    [failure(413, 'PayloadTooLarge'), false, 'failed'],
    [failure(400, 'BadCollapseId'), false, 'failed'],
  ];
  for (const [answer, ownTopic, expected] of table) {
    it(`${answer.status ?? 'no answer'} ${answer.response?.reason ?? answer.error?.message ?? ''}${ownTopic ? ' (a topic the device registered)' : ''} → ${expected}`, () => {
      assert.equal(kind(classifyApns(answer, ownTopic)), expected);
    });
  }
});
