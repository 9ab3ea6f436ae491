import type { ChatClient } from '../../src/client/browser.js';
import { type UploadedAttachment, uploadErrorText } from './attachment-sdk.js';
import { imageFacts } from './image-preview.js';

/** A file on its way to the server from the composer: what its card shows. */
export interface PendingUpload {
  readonly key: number;
  readonly name: string;
  readonly size: number;
  readonly type: string;
  sent: number;
  /** What the server is to hold in the end (an encrypted file is a little larger than the file). */
  total: number;
  state: 'uploading' | 'done' | 'failed';
  /** Why it failed, in words. */
  error?: string;
  result?: UploadedAttachment;
  /** A local object URL of an image, for the card's preview (revoked when the card goes). */
  readonly preview: string | undefined;
  readonly controller: AbortController;
}

/**
 * The files being attached, per thread, until the message that carries them
 * is sent (or they are removed). Each upload starts at once, so a large file
 * is on its way while the text is written. Cancelling aborts the SDK's upload
 * (which ends it on the server) and drops the card.
 */
export class UploadQueue {
  private readonly byThread = new Map<number, PendingUpload[]>();
  private next = 1;

  constructor(
    private readonly client: ChatClient,
    private readonly changed: () => void,
  ) {}

  list(threadId: number): readonly PendingUpload[] {
    return this.byThread.get(threadId) ?? [];
  }

  /**
   * Starts uploading `file` to attach in `threadId`; resolves with the
   * upload once it is done (undefined when it failed or was cancelled).
   */
  add(threadId: number, file: Blob, options: { name: string; encrypt: boolean; durationMs?: number }): Promise<PendingUpload | undefined> {
    const upload: PendingUpload = {
      key: this.next++,
      name: options.name,
      size: file.size,
      type: file.type,
      sent: 0,
      total: file.size,
      state: 'uploading',
      preview: file.type.startsWith('image/') && !file.type.includes('svg') ? URL.createObjectURL(file) : undefined,
      controller: new AbortController(),
    };
    this.byThread.set(threadId, [...this.list(threadId), upload]);
    this.changed();
    // Through a promise from the start: a call that throws at once fails the card like one that rejects.
    // An encrypted image's size and preview are the sender's to say (the server cannot see them).
    return Promise.resolve(options.encrypt ? imageFacts(file) : undefined)
      .then((facts) => this.client.upload(file, {
        ...facts,
        name: options.name,
        ...(file.type ? { type: file.type } : {}),
        encrypt: options.encrypt,
        ...(options.durationMs !== undefined ? { durationMs: Math.round(options.durationMs) } : {}),
        signal: upload.controller.signal,
        onProgress: (sent, total) => {
          upload.sent = sent;
          upload.total = total;
          this.changed();
        },
      }))
      .then((result) => {
        upload.state = 'done';
        upload.sent = upload.total;
        upload.result = result;
        return upload;
      })
      .catch((error: unknown) => {
        if (upload.controller.signal.aborted) return undefined;
        upload.state = 'failed';
        upload.error = uploadErrorText(error);
        return undefined;
      })
      .finally(() => this.changed());
  }

  /** Stops an upload (or drops a finished or failed one) and removes its card. */
  remove(threadId: number, key: number): void {
    const upload = this.list(threadId).find((u) => u.key === key);
    if (!upload) return;
    if (upload.state === 'uploading') upload.controller.abort();
    this.forget(threadId, [upload]);
  }

  uploading(threadId: number): boolean {
    return this.list(threadId).some((u) => u.state === 'uploading');
  }

  /** The finished uploads of the thread, taken off the composer: they go with the message being sent. */
  takeDone(threadId: number): UploadedAttachment[] {
    const done = this.list(threadId).filter((u) => u.state === 'done');
    this.forget(threadId, done);
    return done.flatMap((u) => (u.result ? [u.result] : []));
  }

  /** Takes one finished upload (a voice message, sent on its own). */
  take(threadId: number, key: number): UploadedAttachment | undefined {
    const upload = this.list(threadId).find((u) => u.key === key && u.state === 'done');
    if (!upload) return undefined;
    this.forget(threadId, [upload]);
    return upload.result;
  }

  private forget(threadId: number, uploads: readonly PendingUpload[]): void {
    if (uploads.length === 0) return;
    for (const upload of uploads) if (upload.preview) URL.revokeObjectURL(upload.preview);
    this.byThread.set(threadId, this.list(threadId).filter((u) => !uploads.includes(u)));
    this.changed();
  }
}
