import { ChatError, isChatError } from '../../errors.js';
import { parseUploadMetadataHeader, readUploadMetadata } from '../../services/attachments/upload-metadata.js';
import { attachmentFields } from '../../services/message-attachments.js';
import type { Upload, UploadProgress, UploadService } from '../../services/attachments/uploads.js';
import type { Principal } from '../../services/types.js';
import { errorResponse, json } from './respond.js';
import type { RouteHandler, Router } from './router.js';

/**
 * The tus 1.0 endpoint (core, creation, creation-with-upload, termination,
 * expiration; https://tus.io/protocols/resumable-upload), plus GET for the
 * server's description of a finished upload. Every answer, errors included,
 * carries Tus-Resumable; errors are chatd's JSON, with Upload-Offset when the
 * client needs it to resume. docs/attachments.md, "Uploading".
 */

export const UPLOADS_PATH = '/v1/uploads';
const TUS_VERSION = '1.0.0';
const OFFSET_STREAM = 'application/offset+octet-stream';

export function addUploadRoutes(
  router: Router,
  authenticate: (request: Request, address?: string) => Promise<Principal>,
  uploads: UploadService,
  settings: { readonly maxFileBytes: number },
): void {
  router.add('OPTIONS', UPLOADS_PATH, () =>
    tus(
      new Response(null, {
        status: 204,
        headers: {
          'tus-version': TUS_VERSION,
          'tus-extension': 'creation,creation-with-upload,termination,expiration',
          'tus-max-size': String(settings.maxFileBytes),
        },
      }),
    ),
  );

  router.add('POST', UPLOADS_PATH, tusRoute(async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    if (request.headers.has('upload-defer-length')) {
      throw new ChatError('invalid_upload', 'Upload-Defer-Length is not supported: send Upload-Length (the size of the file)');
    }
    const length = byteCount(request.headers.get('upload-length'), 'Upload-Length');
    const metadata = readUploadMetadata(parseUploadMetadataHeader(request.headers.get('upload-metadata')));
    const upload = await uploads.create(principal, length, metadata);
    const location = `${UPLOADS_PATH}/${upload.id}`;
    let progress: UploadProgress = { offset: upload.completedAt === null ? 0 : length, length, expiresAt: upload.completedAt === null ? upload.expiresAt : null };
    if (isOffsetStream(request)) {
      // creation-with-upload: the body is the first bytes. Refused bytes still leave a created upload: say where it is.
      try {
        progress = await uploads.append(principal, upload.id, 0, request.body);
      } catch (error) {
        if (isChatError(error)) return uploadError(error, { location });
        throw error;
      }
    } else {
      await request.body?.cancel().catch(() => {});
    }
    return new Response(null, { status: 201, headers: { location, ...progressHeaders(progress) } });
  }), { streamBody: true });

  // Before GET: the router would otherwise answer HEAD with the GET route.
  router.add('HEAD', `${UPLOADS_PATH}/:id`, tusRoute(async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const progress = await uploads.progress(principal, context.params.id ?? '');
    return new Response(null, { status: 200, headers: { 'upload-length': String(progress.length), ...progressHeaders(progress) } });
  }));

  router.add('PATCH', `${UPLOADS_PATH}/:id`, tusRoute(async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    if (!isOffsetStream(request)) {
      throw new ChatError('unsupported_media_type', `send the bytes with "Content-Type: ${OFFSET_STREAM}" (got ${JSON.stringify(request.headers.get('content-type') ?? '')})`);
    }
    const offset = byteCount(request.headers.get('upload-offset'), 'Upload-Offset');
    const progress = await uploads.append(principal, context.params.id ?? '', offset, request.body);
    return new Response(null, { status: 204, headers: progressHeaders(progress) });
  }), { streamBody: true });

  router.add('DELETE', `${UPLOADS_PATH}/:id`, tusRoute(async (request, context) => {
    await uploads.terminate(await authenticate(request, context.clientAddress), context.params.id ?? '');
    return new Response(null, { status: 204, headers: { 'cache-control': 'no-store' } });
  }));

  router.add('GET', `${UPLOADS_PATH}/:id`, tusRoute(async (request, context) => {
    const principal = await authenticate(request, context.clientAddress);
    const { upload, offset } = await uploads.describe(principal, context.params.id ?? '');
    return json(200, { upload: uploadJson(upload, offset) });
  }, { versionRequired: false }));
}

/** GET /v1/uploads/:id's body: `attachment` is what a plaintext message carrying the upload will say of it. */
export function uploadJson(upload: Upload, offset: number): Record<string, unknown> {
  const complete = upload.completedAt !== null;
  return {
    id: upload.id,
    offset,
    length: upload.length,
    complete,
    expires_at: complete ? null : upload.expiresAt,
    ...(complete ? { attachment: attachmentFields(upload) } : {}),
  };
}

/**
 * Runs a tus handler: checks Tus-Resumable (412 for another version, as tus
 * says), answers its ChatErrors in chatd's JSON with the headers a tus client
 * reads, and adds Tus-Resumable to every answer.
 */
function tusRoute(handler: RouteHandler, options: { readonly versionRequired?: boolean } = {}): RouteHandler {
  return async (request, context) => {
    try {
      const version = request.headers.get('tus-resumable');
      if (options.versionRequired !== false && version !== TUS_VERSION) {
        await request.body?.cancel().catch(() => {});
        throw new ChatError(
          'tus_version_unsupported',
          version === null ? `send "Tus-Resumable: ${TUS_VERSION}": this is a tus ${TUS_VERSION} endpoint` : `tus version ${JSON.stringify(version.slice(0, 20))} is not supported; this server speaks ${TUS_VERSION}`,
        );
      }
      return tus(await handler(request, context));
    } catch (error) {
      if (isChatError(error)) return uploadError(error);
      throw error;
    }
  };
}

function uploadError(error: ChatError, headers: Record<string, string> = {}): Response {
  const extra: Record<string, string> = { ...headers };
  const offset = error.details?.offset;
  if (typeof offset === 'number') extra['upload-offset'] = String(offset);
  if (error.code === 'tus_version_unsupported') extra['tus-version'] = TUS_VERSION;
  return tus(errorResponse(error, extra));
}

function tus(response: Response): Response {
  response.headers.set('tus-resumable', TUS_VERSION);
  return response;
}

function progressHeaders(progress: UploadProgress): Record<string, string> {
  return {
    'upload-offset': String(progress.offset),
    'cache-control': 'no-store',
    ...(progress.expiresAt !== null ? { 'upload-expires': new Date(progress.expiresAt).toUTCString() } : {}),
  };
}

function isOffsetStream(request: Request): boolean {
  const type = request.headers.get('content-type');
  return type !== null && type.split(';')[0]?.trim().toLowerCase() === OFFSET_STREAM;
}

/** A header that must be a whole number of bytes. */
function byteCount(value: string | null, header: string): number {
  if (value === null) throw new ChatError('invalid_upload', `${header} is required`, { field: header });
  const count = /^\d{1,16}$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isSafeInteger(count)) throw new ChatError('invalid_upload', `${header} must be a whole number of bytes, got ${JSON.stringify(value.slice(0, 20))}`, { field: header });
  return count;
}
