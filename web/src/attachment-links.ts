import type { ChatClient } from '../../src/client/browser.js';
import type { AttachmentLinks } from './attachment-sdk.js';

/** A download started by the user asks for a new link when its link has less than this left. */
const MARGIN_MS = 5_000;
/** After an element's load failed, a new link is asked for at most this often (a missing file must not loop). */
const RETRY_MS = 10_000;

/**
 * Signed links of the attachments on screen, one request per attachment
 * however often it renders. The device token never goes in a URL: what an
 * `<img>` or `<video>` loads is a link that expires (docs/attachments.md).
 * An element whose load failed (the link expired while the page was open)
 * calls `refresh`, which asks for a new one.
 */
export class LinkCache {
  private readonly links = new Map<string, AttachmentLinks>();
  private readonly asking = new Map<string, Promise<AttachmentLinks>>();
  private readonly refreshedAt = new Map<string, number>();
  /** When asking for an attachment's links last failed: not asked again at every render. */
  private readonly failedAt = new Map<string, number>();

  constructor(
    private readonly client: ChatClient,
    private readonly changed: () => void,
  ) {}

  /**
   * The links, if known and not expired; otherwise asks for them (a change
   * follows). Not asked again before they expire: an element on screen keeps
   * its URL (a new one would load it again); one that fails calls `refresh`.
   */
  get(id: string): AttachmentLinks | undefined {
    const links = this.links.get(id);
    if (links && expiresMs(links) > Date.now()) return links;
    if (Date.now() - (this.failedAt.get(id) ?? 0) > RETRY_MS) void this.ask(id).catch(() => {});
    return links;
  }

  /** Links for a download started by the user: fresh enough to use now. */
  async fresh(id: string): Promise<AttachmentLinks> {
    const links = this.links.get(id);
    if (links && expiresMs(links) - MARGIN_MS > Date.now()) return links;
    return this.ask(id);
  }

  /** An element could not load from its link: ask for a new one (not more than once per RETRY_MS). */
  refresh(id: string): void {
    const last = this.refreshedAt.get(id) ?? 0;
    if (Date.now() - last < RETRY_MS) return;
    this.refreshedAt.set(id, Date.now());
    this.links.delete(id);
    void this.ask(id).catch(() => {});
  }

  private ask(id: string): Promise<AttachmentLinks> {
    const asking = this.asking.get(id);
    if (asking) return asking;
    const request = this.client
      .attachmentLinks(id)
      .then((links) => {
        this.links.set(id, links);
        this.failedAt.delete(id);
        this.changed();
        return links;
      })
      .catch((error: unknown) => {
        this.failedAt.set(id, Date.now());
        throw error;
      })
      .finally(() => this.asking.delete(id));
    this.asking.set(id, request);
    return request;
  }
}

/** Unix milliseconds (a value in seconds, as the HTTP API's `expires_at` may be, is read as seconds). */
function expiresMs(links: AttachmentLinks): number {
  return links.expiresAt < 1e12 ? links.expiresAt * 1000 : links.expiresAt;
}
