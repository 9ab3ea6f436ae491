import { ChatError } from '../../errors.js';
import type { AttachmentStorage, UploadRow } from '../../storage/ports/attachments.js';
import type { BlobStore, ByteRange } from '../../storage/ports/blobs.js';
import { LINK_SECRET_NAME, type LinkVariant, checkLink, makeLinkSecret, signLink } from './links.js';

/**
 * Who may read an attachment, and what they read (docs/attachments.md,
 * "Downloading"). A device reads with its token (canRead: the uploader, or a
 * member who can see a message that carries it); a browser element reads with
 * a signed link that such a device asked for. Every refusal of the first kind
 * — an unknown id, an upload not finished, one the user may not see — is the
 * same 404 after the same storage call, so ids are never confirmed.
 */

/** The part of the blob store downloads use. */
export type BlobReader = Pick<BlobStore, 'blobSize' | 'readBlob'>;

/** One variant of one attachment, ready to serve. */
export interface Download {
  readonly id: string;
  readonly variant: LinkVariant;
  /** Of the bytes served: the ETag. */
  readonly sha256: string;
  readonly size: number;
  /** Sniffed at upload (image/webp for a thumbnail). */
  readonly mime: string;
  /** The name the uploader gave. */
  readonly name: string;
  read(range?: ByteRange): AsyncIterable<Uint8Array>;
}

export interface SignedLinks {
  /** Unix seconds, as the links carry it. */
  readonly exp: number;
  readonly fileSig: string;
  /** Null when the attachment has no thumbnail. */
  readonly thumbnailSig: string | null;
}

export class AttachmentDownloads {
  private secret: Promise<Uint8Array> | undefined;

  constructor(
    private readonly deps: {
      readonly attachments: Pick<AttachmentStorage, 'upload' | 'canRead' | 'secret'>;
      readonly blobs: BlobReader;
      /** Unix ms. */
      readonly now: () => number;
      readonly linkTtlSeconds: number;
    },
  ) {}

  /** The attachment as `userId` may read it, or not_found. */
  async forUser(userId: number, id: string, variant: LinkVariant): Promise<Download> {
    if (!(await this.deps.attachments.canRead(userId, id))) throw notFound();
    return this.open(await this.deps.attachments.upload(id), variant);
  }

  /** The attachment a signed link names: link_invalid or link_expired before anything is looked up, then not_found if it is gone. */
  async forLink(id: string, variant: LinkVariant, exp: string | null, sig: string | null): Promise<Download> {
    const check = checkLink(await this.linkSecret(), id, variant, exp, sig, Math.floor(this.deps.now() / 1000));
    if (check === 'invalid') throw new ChatError('link_invalid', 'this attachment link is not valid (edited or for another attachment); ask for a new one');
    if (check === 'expired') throw new ChatError('link_expired', 'this attachment link has expired; ask for a new one (POST /v1/attachments/{id}/links)');
    return this.open(await this.deps.attachments.upload(id), variant);
  }

  /** Links to the file (and its thumbnail) valid for link_ttl_seconds, for a user who may read it. */
  async signLinks(userId: number, id: string): Promise<SignedLinks> {
    if (!(await this.deps.attachments.canRead(userId, id))) throw notFound();
    const upload = await this.deps.attachments.upload(id);
    if (!upload?.blob) throw notFound();
    const secret = await this.linkSecret();
    const exp = Math.floor(this.deps.now() / 1000) + this.deps.linkTtlSeconds;
    return {
      exp,
      fileSig: signLink(secret, id, 'file', exp),
      thumbnailSig: upload.blob.thumbnail ? signLink(secret, id, 'thumbnail', exp) : null,
    };
  }

  private async open(upload: UploadRow | undefined, variant: LinkVariant): Promise<Download> {
    const blob = upload?.blob;
    if (!upload || !blob) throw notFound();
    const sha256 = variant === 'file' ? blob.sha256 : blob.thumbnail?.sha256;
    if (!sha256) throw notFound();
    // The store's size, not the row's: what is read is what Content-Length promises. A blob the database
    // names but the store lacks is answered 404 here rather than cut off after the headers.
    const size = await this.deps.blobs.blobSize(sha256);
    if (size === undefined) throw notFound();
    return {
      id: upload.id,
      variant,
      sha256,
      size,
      mime: variant === 'file' ? blob.mime : 'image/webp',
      name: upload.name,
      read: (range) => this.deps.blobs.readBlob(sha256, range),
    };
  }

  /** Read once from storage (every node gets the same value); a failed read is not kept, so the next request asks again. */
  private linkSecret(): Promise<Uint8Array> {
    this.secret ??= this.deps.attachments.secret(LINK_SECRET_NAME, makeLinkSecret).catch((error: unknown) => {
      this.secret = undefined;
      throw error;
    });
    return this.secret;
  }
}

function notFound(): ChatError {
  return new ChatError('not_found', 'no such attachment (or not one you can see)');
}
