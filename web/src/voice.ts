/**
 * Voice messages recorded in the browser with MediaRecorder: Opus in WebM
 * where the browser has it (Chromium, Firefox), else whatever it records
 * (Safari: AAC in MP4). The microphone is held only while recording.
 */

/** Preferred first; the first one the browser can record is used. */
const TYPES = ['audio/webm;codecs=opus', 'audio/ogg;codecs=opus', 'audio/webm', 'audio/mp4;codecs=mp4a.40.2', 'audio/mp4'];

export interface VoiceNote {
  readonly blob: Blob;
  /** Milliseconds, as recorded. */
  readonly durationMs: number;
  /** A file name with the extension of what was recorded. */
  readonly name: string;
}

/** Why recording cannot start, in words (permission refused, no microphone, not a secure page). */
export class VoiceError extends Error {}

export function canRecord(): boolean {
  return typeof MediaRecorder !== 'undefined' && typeof navigator.mediaDevices?.getUserMedia === 'function';
}

function recordingType(): string | undefined {
  return TYPES.find((type) => MediaRecorder.isTypeSupported(type));
}

function extension(type: string): string {
  if (type.startsWith('audio/ogg')) return 'ogg';
  if (type.startsWith('audio/mp4')) return 'm4a';
  return 'webm';
}

function words(error: unknown): string {
  const name = (error as { name?: string }).name;
  if (name === 'NotAllowedError' || name === 'SecurityError') {
    return 'Microphone access was refused: allow the microphone for this site in the browser to record voice messages.';
  }
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'No microphone was found.';
  if (name === 'NotReadableError') return 'The microphone is in use by another program.';
  return `Recording could not start: ${(error as Error).message ?? String(error)}`;
}

/** One recording: `start`, then `stop` (the note) or `cancel` (nothing). */
export class VoiceRecorder {
  private recorder: MediaRecorder | undefined;
  private stream: MediaStream | undefined;
  private readonly chunks: Blob[] = [];
  private startedAt = 0;

  /** Asks for the microphone (the browser may ask the user) and starts recording. Rejects with a VoiceError. */
  async start(): Promise<void> {
    if (!canRecord()) {
      throw new VoiceError(window.isSecureContext ? 'This browser cannot record audio.' : 'Recording needs a secure page (https, or localhost).');
    }
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (error) {
      throw new VoiceError(words(error));
    }
    const type = recordingType();
    this.recorder = new MediaRecorder(this.stream, type ? { mimeType: type } : {});
    this.recorder.addEventListener('dataavailable', (event) => {
      if (event.data.size > 0) this.chunks.push(event.data);
    });
    // Chunks every second: a long note is not one buffer at stop.
    this.recorder.start(1000);
    this.startedAt = performance.now();
  }

  /** Milliseconds since recording started. */
  elapsed(): number {
    return this.startedAt ? performance.now() - this.startedAt : 0;
  }

  /** Ends the recording and gives the note. */
  stop(): Promise<VoiceNote> {
    const recorder = this.recorder;
    if (!recorder) return Promise.reject(new VoiceError('Not recording.'));
    this.recorder = undefined;
    const durationMs = this.elapsed();
    return new Promise((resolve) => {
      recorder.addEventListener(
        'stop',
        () => {
          this.release();
          const type = (recorder.mimeType || this.chunks[0]?.type || 'audio/webm').split(';')[0] ?? 'audio/webm';
          const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, '-');
          resolve({ blob: new Blob(this.chunks, { type }), durationMs, name: `voice-${stamp}.${extension(type)}` });
        },
        { once: true },
      );
      recorder.stop();
    });
  }

  /** Drops the recording (nothing once `stop` has begun: that note is on its way). */
  cancel(): void {
    const recorder = this.recorder;
    if (!recorder) return;
    this.recorder = undefined;
    if (recorder.state !== 'inactive') recorder.stop();
    this.chunks.length = 0;
    this.release();
  }

  private release(): void {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = undefined;
  }
}
