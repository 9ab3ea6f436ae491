import { ChatError, isChatError } from '../errors.js';
import type { AppendRefusal, SendContent } from '../storage/ports/messaging.js';
import { readEnvelope } from './e2e-envelope.js';
import type { Principal } from './types.js';

/**
 * What a send and an edit share about a body's content: the envelope read
 * before the unit (the unit compares its sealed device ids with the thread's
 * approved devices), and the error each refusal of that check is answered
 * with. One place, so that an edit of an e2e message is sealed and refused
 * exactly like a send.
 */
export interface Sealing {
  readonly content: SendContent;
  /** Why the envelope is invalid (malformed, or claiming another sender); reported only if the unit refuses it too. */
  readonly error: ChatError | undefined;
}

/**
 * The content a unit checks. An invalid envelope is refused in the unit too
 * (`envelope_invalid`), after idempotency, so that a resend of a stored
 * message is still answered as a duplicate.
 */
export function sealing(principal: Principal, kind: 'text' | 'e2e', bodyJson: string): Sealing {
  if (kind === 'text') return { content: { kind: 'text' }, error: undefined };
  let envelope;
  try {
    envelope = readEnvelope(bodyJson);
  } catch (error) {
    if (!isChatError(error)) throw error;
    return { content: { kind: 'e2e', sealedTo: 'invalid' }, error };
  }
  if (envelope.senderDevice !== principal.deviceId) {
    return {
      content: { kind: 'e2e', sealedTo: 'invalid' },
      error: new ChatError('invalid_field', `sender_device must be this device (${principal.deviceId})`, { field: 'body' }),
    };
  }
  return { content: { kind: 'e2e', sealedTo: envelope.deviceIds }, error: undefined };
}

/** The error for a refusal of the content check (today's codes, messages and details: clients and tests rely on them); undefined for other refusals. */
export function contentRefusal(refusal: AppendRefusal, envelopeError: ChatError | undefined): ChatError | undefined {
  switch (refusal.reason) {
    case 'encryption_required':
      return new ChatError('encryption_required', 'this thread takes end-to-end encrypted messages only (kind "e2e")', { field: 'kind' });
    case 'envelope_invalid':
      return envelopeError ?? new ChatError('invalid_field', 'the envelope is not valid', { field: 'body' });
    case 'device_unapproved':
      return new ChatError(
        'invalid_field',
        'this device has no approved keys: publish them (keys_publish) and have them signed by your account key (account_signature) first',
        { field: 'body' },
      );
    case 'devices_changed': {
      const { missing, extra } = refusal;
      return new ChatError('devices_changed', `the thread's devices changed (missing ${missing.join(', ') || 'none'}; extra ${extra.join(', ') || 'none'}): fetch keys and encrypt again`, {
        details: { missing_devices: missing, extra_devices: extra },
      });
    }
    default:
      return undefined;
  }
}

/** The error for a mention of someone who is not a member (a send's or an edit's). */
export function mentionRefusal(userId: number, threadId: number): ChatError {
  return new ChatError('invalid_field', `mentions: user ${userId} is not a member of thread ${threadId}`, { field: 'mentions' });
}
