import { ChatError } from '../../errors.js';
import type { AttachmentDownloads, Download } from '../../services/attachments/downloads.js';
import type { LinkVariant } from '../../services/attachments/links.js';
import type { Principal } from '../../services/types.js';
import { etagListMatches, parseRange } from './ranges.js';
import { errorResponse, json } from './respond.js';
import type { RequestContext, Router } from './router.js';

export interface AttachmentRouteDeps {
  /** bearerAuthenticator(accounts). */
  readonly authenticate: (request: Request, address?: string) => Promise<Principal>;
  readonly downloads: AttachmentDownloads;
}

/**
 * Downloads (docs/attachments.md, "Downloading"): GET/HEAD of an attachment
 * or its thumbnail, with a device token or a signed link, by range; and
 * POST …/links to get signed links for elements that cannot send a header.
 */
export function addAttachmentRoutes(router: Router, deps: AttachmentRouteDeps): void {
  const download = (variant: LinkVariant) => async (request: Request, context: RequestContext) => {
    const id = context.params.id ?? '';
    const query = new URL(request.url).searchParams;
    // A link is recognised by its query alone: a browser element sends no Authorization, and a token never makes a bad link good.
    const item =
      query.has('sig') || query.has('exp')
        ? await deps.downloads.forLink(id, variant, query.get('exp'), query.get('sig'))
        : await deps.downloads.forUser((await deps.authenticate(request, context.clientAddress)).user.id, id, variant);
    return serve(request, item);
  };
  router.add('GET', '/v1/attachments/:id', download('file'));
  router.add('GET', '/v1/attachments/:id/thumbnail', download('thumbnail'));

  router.add('POST', '/v1/attachments/:id/links', async (request, context) => {
    const principal = await deps.authenticate(request, context.clientAddress);
    const id = context.params.id ?? '';
    const links = await deps.downloads.signLinks(principal.user.id, id);
    const path = `/v1/attachments/${encodeURIComponent(id)}`;
    const query = (sig: string) => `?exp=${links.exp}&sig=${sig}`;
    return json(200, {
      url: path + query(links.fileSig),
      thumbnail_url: links.thumbnailSig === null ? null : `${path}/thumbnail${query(links.thumbnailSig)}`,
      expires_at: links.exp * 1000,
    });
  });
}

/** Conditional request, then range: 304, 416, 206 or 200, with the headers every answer about content carries. */
function serve(request: Request, item: Download): Response {
  const headers: Record<string, string> = {
    'accept-ranges': 'bytes',
    etag: `"${item.sha256}"`,
    // Content-addressed: the bytes behind this URL never change.
    'cache-control': 'private, max-age=31536000, immutable',
    'x-content-type-options': 'nosniff',
    // Even a file a browser renders runs no script and loads nothing (an HTML or SVG upload stays inert).
    'content-security-policy': "sandbox; default-src 'none'",
  };
  if (etagListMatches(request.headers.get('if-none-match'), headers.etag as string)) {
    return new Response(null, { status: 304, headers });
  }
  headers['content-type'] = item.mime === 'text/plain' ? 'text/plain; charset=utf-8' : item.mime;
  headers['content-disposition'] = contentDisposition(item);
  const ifRange = request.headers.get('if-range');
  const range = ifRange !== null && ifRange.trim() !== headers.etag ? ({ kind: 'whole' } as const) : parseRange(request.headers.get('range'), item.size);
  if (range.kind === 'unsatisfiable') {
    // A JSON error (as every error): none of the content's headers but these two.
    return errorResponse(new ChatError('range_not_satisfiable', `the range starts past the end of the attachment (${item.size} bytes)`), {
      'accept-ranges': 'bytes',
      'content-range': `bytes */${item.size}`,
    });
  }
  if (range.kind === 'partial') {
    headers['content-range'] = `bytes ${range.start}-${range.end}/${item.size}`;
    headers['content-length'] = String(range.end - range.start + 1);
    return new Response(lazyStream(() => item.read(range)), { status: 206, headers });
  }
  headers['content-length'] = String(item.size);
  return new Response(item.size === 0 ? null : lazyStream(() => item.read()), { status: 200, headers });
}

/**
 * Inline only for media a browser shows without running anything (images but
 * SVG, audio, video); everything else is a download. The name goes in
 * RFC 6266's filename* (UTF-8), with an ASCII fallback for old clients.
 */
function contentDisposition(item: Download): string {
  if (item.variant === 'thumbnail') return 'inline';
  const inline = (item.mime.startsWith('image/') && item.mime !== 'image/svg+xml') || item.mime.startsWith('audio/') || item.mime.startsWith('video/');
  const name = item.name === '' ? item.id : item.name;
  const fallback = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  const encoded = encodeURIComponent(name).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${inline ? 'inline' : 'attachment'}; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

/**
 * The blob as a body the transport pulls with backpressure: nothing is opened
 * until the first read (a HEAD or an aborted request opens nothing), and a
 * cancel closes the file.
 */
function lazyStream(open: () => AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  let iterator: AsyncIterator<Uint8Array> | undefined;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        iterator ??= open()[Symbol.asyncIterator]();
        const next = await iterator.next();
        if (next.done) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await iterator?.return?.();
      },
    },
    { highWaterMark: 0 },
  );
}
