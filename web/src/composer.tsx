import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ThreadJson } from '../../src/client/browser.js';
import { durationText, sizeText } from './attachment-sdk.js';
import { growToFit } from './grow.js';
import { useMentionAutocomplete } from './mention-input.js';
import { plainText } from './message-changes.js';
import type { ChatModel } from './model.js';
import { ComposerBanner } from './reply.js';
import type { PendingUpload } from './uploads.js';
import { VoiceError, VoiceRecorder } from './voice.js';

/**
 * Where a message is written: the text, files attached with the button, by
 * drag-and-drop onto the chat or by paste (each a card with its progress
 * until sent), and voice messages. Send takes the text with the finished
 * files, or the files alone.
 */

/** Starts uploading each file for the thread (encrypted in an encrypted thread). */
export function attachFiles(model: ChatModel, thread: ThreadJson, files: Iterable<File>): void {
  const encrypt = model.e2e.isEncrypted(thread);
  for (const file of files) void model.uploads.add(thread.id, file, { name: file.name || 'file', encrypt });
}

/** Drag-and-drop of files onto an element: its handlers, and whether files are over it now (the drop zone shows). */
export function useFileDrop(onFiles: (files: File[]) => void): {
  dragging: boolean;
  handlers: { onDragEnter: (e: DragEvent) => void; onDragOver: (e: DragEvent) => void; onDragLeave: (e: DragEvent) => void; onDrop: (e: DragEvent) => void };
} {
  const [dragging, setDragging] = useState(false);
  // dragenter/dragleave fire for every child crossed: counted, so the zone does not flicker.
  const depth = useRef(0);
  const carriesFiles = (event: DragEvent): boolean => [...(event.dataTransfer?.types ?? [])].includes('Files');
  // A file dropped just beside the chat must not make the browser leave the page to show it.
  useEffect(() => {
    const keep = (event: DragEvent): void => {
      if (carriesFiles(event)) event.preventDefault();
    };
    window.addEventListener('dragover', keep);
    window.addEventListener('drop', keep);
    return () => {
      window.removeEventListener('dragover', keep);
      window.removeEventListener('drop', keep);
    };
  }, []);
  return {
    dragging,
    handlers: {
      onDragEnter: (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        depth.current += 1;
        setDragging(true);
      },
      onDragOver: (event) => {
        if (!carriesFiles(event)) return;
        // Without this the browser opens the file instead of dropping it here.
        event.preventDefault();
        if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
      },
      onDragLeave: (event) => {
        if (!carriesFiles(event)) return;
        depth.current = Math.max(0, depth.current - 1);
        if (depth.current === 0) setDragging(false);
      },
      onDrop: (event) => {
        if (!carriesFiles(event)) return;
        event.preventDefault();
        depth.current = 0;
        setDragging(false);
        const files = [...(event.dataTransfer?.files ?? [])];
        if (files.length > 0) onFiles(files);
      },
    },
  };
}

export function Composer({ model, thread }: { model: ChatModel; thread: ThreadJson }) {
  const [text, setText] = useState('');
  /** Why a voice message could not be recorded (the microphone refused, say). */
  const [voiceError, setVoiceError] = useState<string>();
  const input = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);
  // Layout effects, as for the editing bar below: a key pressed right after opening a chat or choosing Reply reaches the box.
  useLayoutEffect(() => input.current?.focus(), [thread.id]);
  // The box grows with what is typed (Shift+Enter for a new line), and shrinks back once sent.
  useLayoutEffect(() => growToFit(input.current), [text]);
  const uploads = model.uploads.list(thread.id);
  const uploading = model.uploads.uploading(thread.id);
  const finished = uploads.some((u) => u.state === 'done');
  // Replying, or editing (the text box holds the message's text; files stay for the next message).
  const mode = model.msg.modes.get(thread.id);
  const editing = mode?.kind === 'edit';
  const canSend = editing ? text.trim() !== '' : !uploading && (text.trim() !== '' || finished);
  const mentions = useMentionAutocomplete(model, thread, input, text, setText);
  const editedId = editing ? mode.message.id : undefined;
  const wasEditing = useRef(false);
  // A layout effect, run in the same update that draws the editing bar: the box holds the message's text (or
  // is emptied after an edit) before any later input event. As a plain effect it ran after the next frame, and
  // text typed in between (a fast typist, a busy machine) was overwritten by the old text, saved as no change.
  useLayoutEffect(() => {
    if (editedId !== undefined && mode) {
      setText(plainText(mode.message) ?? '');
      input.current?.focus();
    } else if (wasEditing.current) {
      setText('');
    }
    wasEditing.current = editedId !== undefined;
  }, [editedId]);
  useLayoutEffect(() => {
    if (mode?.kind === 'reply') input.current?.focus();
  }, [mode]);
  const send = (): void => {
    if (!canSend) return;
    const trimmed = text.trim();
    const attachments = editing ? [] : model.uploads.takeDone(thread.id);
    wasEditing.current = false;
    setText('');
    // A refused edit (its window passed, say): the text comes back to be copied or sent as a new message.
    void model.msg.submit(thread.id, trimmed, attachments).then((ok) => {
      if (!ok) setText(trimmed);
    });
  };
  return (
    <form
      class="composer"
      onSubmit={(event) => {
        event.preventDefault();
        send();
      }}
    >
      <ComposerBanner model={model} thread={thread} />
      {mentions.list}
      {uploads.length > 0 && (
        <ul class="uploads" aria-label="Attachments to send">
          {uploads.map((upload) => (
            <UploadCard key={upload.key} upload={upload} onRemove={() => model.uploads.remove(thread.id, upload.key)} />
          ))}
        </ul>
      )}
      <div class="composer-row">
        <input
          ref={picker}
          type="file"
          multiple
          hidden
          data-testid="file-input"
          onChange={(event) => {
            const element = event.currentTarget;
            attachFiles(model, thread, [...(element.files ?? [])]);
            // The same file chosen again is a change too.
            element.value = '';
          }}
        />
        <button type="button" class="icon" aria-label="Attach files" title="Attach files" onClick={() => picker.current?.click()}>
          <PaperclipIcon />
        </button>
        <textarea
          ref={input}
          rows={1}
          value={text}
          placeholder="Message"
          aria-label="Message"
          onInput={(event) => {
            setText(event.currentTarget.value);
            mentions.onCaret();
            model.userTyped(thread.id);
          }}
          onKeyUp={mentions.onCaret}
          onClick={mentions.onCaret}
          onPaste={(event) => {
            const files = [...(event.clipboardData?.files ?? [])];
            if (files.length === 0) return;
            // A pasted screenshot or copied file is attached; pasted text stays text.
            event.preventDefault();
            attachFiles(model, thread, files);
          }}
          onKeyDown={(event) => {
            if (mentions.onKeyDown(event)) return;
            // The keyboard's way to the message features: ↑ in an empty box edits the last own message, Esc stops.
            if (event.key === 'ArrowUp' && text === '' && !mode) {
              const last = model.msg.lastEditable(thread.id);
              if (last) {
                event.preventDefault();
                model.msg.edit(last);
              }
              return;
            }
            if (event.key === 'Escape' && mode) {
              event.preventDefault();
              model.msg.cancel(thread.id);
              return;
            }
            if (event.key === 'Enter' && !event.shiftKey) {
              event.preventDefault();
              send();
            }
          }}
        />
        <VoiceButton model={model} thread={thread} onError={setVoiceError} />
        <button type="submit" disabled={!canSend} title={uploading && !editing ? 'Waiting for the attachments to upload' : undefined}>
          {editing ? 'Save' : 'Send'}
        </button>
      </div>
      {voiceError && (
        <p class="voice-error" role="alert">
          {voiceError}{' '}
          <button type="button" class="link" onClick={() => setVoiceError(undefined)}>
            Close
          </button>
        </p>
      )}
    </form>
  );
}

function UploadCard({ upload, onRemove }: { upload: PendingUpload; onRemove: () => void }) {
  const percent = upload.total > 0 ? Math.min(100, Math.round((upload.sent / upload.total) * 100)) : 100;
  return (
    <li class={`upload ${upload.state}`} data-testid="upload" data-state={upload.state}>
      {upload.preview ? <img class="upload-preview" src={upload.preview} alt="" /> : <FileBadge mime={upload.type} name={upload.name} />}
      <span class="upload-text">
        <span class="upload-name">{upload.name}</span>
        <span class="upload-size">
          {sizeText(upload.size)}
          {upload.state === 'uploading' && ` · ${percent}%`}
          {upload.state === 'done' && ' · ready'}
        </span>
        {upload.state === 'uploading' && <progress value={upload.sent} max={upload.total || 1} aria-label={`Uploading ${upload.name}`} />}
        {upload.error && (
          <span class="upload-error" role="alert">
            {upload.error}
          </span>
        )}
      </span>
      <button type="button" class="icon" onClick={onRemove} aria-label={upload.state === 'uploading' ? `Cancel uploading ${upload.name}` : `Remove ${upload.name}`}>
        ✕
      </button>
    </li>
  );
}

/** A voice message: record, see the time, stop to send (or cancel). */
function VoiceButton({ model, thread, onError }: { model: ChatModel; thread: ThreadJson; onError: (error: string | undefined) => void }) {
  const [recorder, setRecorder] = useState<VoiceRecorder>();
  const [elapsed, setElapsed] = useState(0);
  useEffect(() => {
    if (!recorder) return;
    const timer = setInterval(() => setElapsed(recorder.elapsed()), 250);
    return () => clearInterval(timer);
  }, [recorder]);
  // Leaving the chat (or the page) drops a recording in progress: the microphone is let go.
  const current = useRef<VoiceRecorder>();
  current.current = recorder;
  useEffect(() => () => current.current?.cancel(), [thread.id]);
  const start = async (): Promise<void> => {
    onError(undefined);
    const next = new VoiceRecorder();
    try {
      await next.start();
      setElapsed(0);
      setRecorder(next);
    } catch (failure) {
      onError(failure instanceof VoiceError ? failure.message : String(failure));
    }
  };
  const stop = async (): Promise<void> => {
    if (!recorder) return;
    setRecorder(undefined);
    const note = await recorder.stop();
    const upload = await model.uploads.add(thread.id, note.blob, { name: note.name, encrypt: model.e2e.isEncrypted(thread), durationMs: note.durationMs });
    const attachment = upload && model.uploads.take(thread.id, upload.key);
    if (attachment) await model.send(thread.id, '', [attachment]);
  };
  if (recorder) {
    return (
      <span class="recording" role="status">
        <span class="rec-dot" aria-hidden="true" />
        <span aria-label="Recording time">{durationText(elapsed)}</span>
        <button type="button" class="icon" aria-label="Cancel the voice message" onClick={() => { recorder.cancel(); setRecorder(undefined); }}>
          ✕
        </button>
        <button type="button" aria-label="Stop and send the voice message" onClick={() => void stop()}>
          Stop and send
        </button>
      </span>
    );
  }
  return (
    <button type="button" class="icon" aria-label="Record a voice message" title="Record a voice message" onClick={() => void start()}>
      <MicIcon />
    </button>
  );
}

/**
 * The card's icon: a short label of the file's kind (PDF, ZIP, the name's
 * extension…), in words rather than an emoji, which not every system can draw.
 */
export function FileBadge({ mime, name }: { mime: string; name: string }) {
  return (
    <span class={`file-badge ${mime.split('/')[0] ?? ''}`} aria-hidden="true">
      {fileLabel(mime, name)}
    </span>
  );
}

function fileLabel(mime: string, name: string): string {
  if (mime === 'application/pdf') return 'PDF';
  if (/zip|gzip|x-tar|compressed/.test(mime)) return 'ZIP';
  const extension = /\.([a-z0-9]{1,4})$/i.exec(name)?.[1];
  if (extension) return extension.toUpperCase();
  if (mime.startsWith('image/')) return 'IMG';
  if (mime.startsWith('audio/')) return 'AUDIO';
  if (mime.startsWith('video/')) return 'VIDEO';
  if (mime.startsWith('text/')) return 'TXT';
  return 'FILE';
}

function PaperclipIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round">
      <path d="M21 11.5 12.5 20a5.5 5.5 0 0 1-7.8-7.8l8.6-8.5a3.7 3.7 0 0 1 5.2 5.2l-8.6 8.5a1.8 1.8 0 0 1-2.6-2.6l7.9-7.8" />
    </svg>
  );
}

function MicIcon() {
  return (
    <svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round">
      <rect x="9" y="3" width="6" height="11" rx="3" />
      <path d="M5 11a7 7 0 0 0 14 0M12 18v3" />
    </svg>
  );
}
