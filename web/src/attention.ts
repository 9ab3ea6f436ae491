import type { ClientMessage } from '../../src/client/browser.js';
import { attachmentSummary, attachmentsOf } from './attachment-sdk.js';
import { isMentioned } from './mentions.js';
import type { ChatModel } from './model.js';

/** The user's choices about being alerted, kept per browser. */
interface Preferences {
  /** A short sound with each notification (on unless turned off). */
  sound: boolean;
  /** "Not now" on the banner: it is not shown again (settings can still turn notifications on). */
  bannerDismissed: boolean;
}

const PREFERENCES_KEY = 'chatd.attention';
/** Older messages are the backlog of a reconnection, not news: no notification for them. */
const NEWS_MS = 5 * 60_000;
/** Longest notification text (the system cuts long ones anyway, differently everywhere). */
const BODY_MAX = 140;

/**
 * What draws the user back while the page is in the background: the unread
 * count in the title and on a drawn favicon, and — for a new message while
 * the tab is hidden — a browser notification and a short sound. Muted
 * threads count for nothing and alert nobody. Permission for notifications
 * is asked only when the user presses the banner's button (shown once a
 * message has been sent or received) or the one in settings.
 */
export class Attention {
  private preferences: Preferences;
  /** A message was sent or received since the page loaded: the moment to offer notifications. */
  private active = false;
  private shownCount = -1;
  private audio: AudioContext | undefined;
  private readonly baseTitle = document.title || 'chatd';

  constructor(private readonly model: ChatModel) {
    this.preferences = readPreferences();
    model.client.on('message', (message) => this.arrived(message));
    model.client.on('status', (change) => {
      if (change.status === 'sent') this.noticeActivity();
    });
    // Browsers let audio start only after a user gesture: the first one creates the context, so later sounds can play.
    const unlock = (): void => {
      this.unlockAudio();
      window.removeEventListener('pointerdown', unlock);
      window.removeEventListener('keydown', unlock);
    };
    window.addEventListener('pointerdown', unlock);
    window.addEventListener('keydown', unlock);
  }

  /** Unread messages in threads that are not muted (the open thread counts nothing while it is on screen). */
  unreadCount(): number {
    return this.model.threads.reduce((sum, thread) => (thread.muted ? sum : sum + this.model.unreadShown(thread)), 0);
  }

  /** Brings the title and the favicon up to date; cheap when nothing changed. */
  refresh(): void {
    const count = this.unreadCount();
    if (count === this.shownCount) return;
    this.shownCount = count;
    document.title = count > 0 ? `(${count}) ${this.baseTitle}` : this.baseTitle;
    drawFavicon(count);
    // The installed app's icon (where the system has badges): the same count the service worker sets from a push.
    void navigator.setAppBadge?.(count).catch(() => {});
  }

  /** What the notification settings show: unsupported, blocked, on, or not asked yet. */
  permission(): NotificationPermission | 'unsupported' {
    return 'Notification' in window ? Notification.permission : 'unsupported';
  }

  /** Whether to offer notifications in the banner now. */
  offerBanner(): boolean {
    return this.active && !this.preferences.bannerDismissed && this.permission() === 'default';
  }

  /** Asks the browser (from a click, as browsers require). */
  async askPermission(): Promise<void> {
    this.unlockAudio();
    if (this.permission() === 'unsupported') return;
    await Notification.requestPermission();
    this.model.notify();
    // Allowed: notifications can come while no tab is open too (Web Push).
    await this.model.push.start();
  }

  dismissBanner(): void {
    this.save({ ...this.preferences, bannerDismissed: true });
  }

  get sound(): boolean {
    return this.preferences.sound;
  }

  setSound(on: boolean): void {
    this.save({ ...this.preferences, sound: on });
    if (on) {
      this.unlockAudio();
      this.beep();
    }
  }

  private save(preferences: Preferences): void {
    this.preferences = preferences;
    try {
      localStorage.setItem(PREFERENCES_KEY, JSON.stringify(preferences));
    } catch {
      // Storage full or refused: the choice holds for this page only.
    }
    this.model.notify();
  }

  private noticeActivity(): void {
    if (this.active) return;
    this.active = true;
    this.model.notify();
  }

  private arrived(message: ClientMessage): void {
    // A group's notices (created, encryption turned on) are not a conversation yet: no offer for them.
    if (message.kind === 'system' || 'change' in message) return;
    this.noticeActivity();
    if (message.sender_id === this.model.session.user.id) return;
    if (document.visibilityState !== 'hidden' || message.created_at < Date.now() - NEWS_MS) return;
    const thread = this.model.threads.find((t) => t.id === message.thread_id);
    // Mute silences a chat, never a mention of you in it (as push does).
    if (thread?.muted && !isMentioned(message, this.model.session.user.id)) return;
    this.showNotification(message);
    if (this.preferences.sound) this.beep();
  }

  private showNotification(message: ClientMessage): void {
    if (this.permission() !== 'granted') return;
    const thread = this.model.threads.find((t) => t.id === message.thread_id);
    const sender = this.model.nameOf(message.sender_id);
    const group = thread?.kind === 'group';
    const title = group && thread ? this.model.title(thread) : sender;
    const text = shortText(message);
    const threadId = message.thread_id;
    try {
      // One notification per chat: a newer message replaces the older one rather than piling up.
      const notification = new Notification(title, { body: group ? `${sender}: ${text}` : text, tag: `chatd-thread-${threadId}`, icon: faviconUrl(0) });
      notification.onclick = () => {
        window.focus();
        notification.close();
        void this.model.open(threadId);
      };
    } catch {
      // Some browsers allow notifications from a service worker only: the title and favicon still say it.
    }
  }

  private unlockAudio(): void {
    if (this.audio || typeof AudioContext === 'undefined') return;
    try {
      this.audio = new AudioContext();
    } catch {
      // No audio device: no sound.
    }
  }

  /** Two short soft tones, made on the spot (no sound file to download). */
  private beep(): void {
    const audio = this.audio;
    if (!audio) return;
    void audio.resume().catch(() => {});
    const start = audio.currentTime + 0.01;
    for (const [offset, frequency] of [[0, 880], [0.12, 1320]] as const) {
      const tone = audio.createOscillator();
      const gain = audio.createGain();
      tone.type = 'sine';
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, start + offset);
      gain.gain.exponentialRampToValueAtTime(0.15, start + offset + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, start + offset + 0.11);
      tone.connect(gain).connect(audio.destination);
      tone.start(start + offset);
      tone.stop(start + offset + 0.12);
    }
  }
}

function readPreferences(): Preferences {
  const fallback: Preferences = { sound: true, bannerDismissed: false };
  try {
    const stored = JSON.parse(localStorage.getItem(PREFERENCES_KEY) ?? 'null') as Partial<Preferences> | null;
    return { sound: stored?.sound !== false, bannerDismissed: stored?.bannerDismissed === true };
  } catch {
    return fallback;
  }
}

/** The message in a line: its words, else what it carries. */
function shortText(message: ClientMessage): string {
  if (message.kind === 'e2e' && message.e2e?.status !== 'ok') return 'Encrypted message';
  const text = (message.body as { text?: unknown } | null)?.text;
  const line = typeof text === 'string' && text.trim() !== '' ? text.trim() : attachmentSummary(attachmentsOf(message)) || 'New message';
  return line.length > BODY_MAX ? `${line.slice(0, BODY_MAX - 1)}…` : line;
}

/** The page's icon: a chat bubble, with a red badge carrying the count when there is one. */
function faviconUrl(count: number): string {
  const canvas = document.createElement('canvas');
  canvas.width = 64;
  canvas.height = 64;
  const context = canvas.getContext('2d');
  if (!context) return 'data:,';
  context.fillStyle = '#2f6fed';
  context.beginPath();
  context.roundRect(4, 8, 48, 38, 10);
  context.moveTo(14, 44);
  context.lineTo(10, 58);
  context.lineTo(28, 44);
  context.fill();
  if (count > 0) {
    const label = count > 99 ? '99+' : String(count);
    context.fillStyle = '#d93025';
    context.beginPath();
    context.arc(44, 22, 20, 0, Math.PI * 2);
    context.fill();
    context.fillStyle = '#fff';
    context.font = `bold ${label.length > 2 ? 18 : label.length > 1 ? 24 : 30}px system-ui, sans-serif`;
    context.textAlign = 'center';
    context.textBaseline = 'middle';
    context.fillText(label, 44, 24);
  }
  return canvas.toDataURL('image/png');
}

function drawFavicon(count: number): void {
  let link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
  if (!link) {
    link = document.createElement('link');
    link.rel = 'icon';
    document.head.append(link);
  }
  link.href = faviconUrl(count);
  link.dataset.unread = String(count);
}
