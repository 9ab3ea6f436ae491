import type { Config } from '../config/schema.js';
import { ChatError } from '../errors.js';
import type { Logger } from '../log.js';
import { RuntimeMetrics } from '../metrics.js';
import type { AccountService } from '../services/accounts.js';
import type { PushTokenService } from '../services/push-tokens.js';
import type { Storage } from '../storage/ports/storage.js';
import { addAccountRoutes, bearerAuthenticator } from '../transport/http/accounts.js';
import { addAttachmentRoutes } from '../transport/http/attachments.js';
import { addHealthRoutes } from '../transport/http/health.js';
import { addMetricsRoute } from '../transport/http/metrics.js';
import { addPushRoutes } from '../transport/http/push.js';
import { type StreamEndpoint, addStreamRoutes } from '../transport/http/stream.js';
import { errorResponse } from '../transport/http/respond.js';
import { Router } from '../transport/http/router.js';
import { addUploadRoutes } from '../transport/http/uploads.js';
import { addWebRoutes } from '../transport/http/web.js';
import type { HttpHandler } from '../transport/types.js';
import type { ServerAttachments } from './attachments.js';
import { type EngineHealth, checkEngines } from './engines.js';

export const WS_PATH = '/v1/ws';

export interface ServerHttp {
  /** What the transport calls for every request that is not a WebSocket upgrade. */
  readonly handler: HttpHandler;
  /** Whether the route for a request reads its body as a stream (TransportOptions.streamsBody). */
  readonly streamsBody: (method: string, path: string) => boolean;
  /** Requests being answered now: shutdown waits for them. */
  inFlight(): number;
  readonly metrics: RuntimeMetrics | undefined;
  /** /metrics alone, when metrics.listen gives it a listener of its own. */
  readonly metricsRouter: Router | undefined;
}

/** The HTTP side of the server: health, metrics, accounts, push tokens, attachments, the web client, and the hint for a plain GET of the socket path. */
export function buildHttp(
  config: Config,
  log: Logger,
  deps: {
    readonly storage: Pick<Storage, 'ping' | 'writes'>;
    /** The storage and bus engines, for /readyz and /metrics. */
    readonly engines: readonly EngineHealth[];
    readonly accounts: AccountService;
    readonly pushTokens: PushTokenService;
    /** The VAPID public key served at GET /v1/push/webpush; undefined: Web Push is off (404 there). */
    readonly webPushKey?: string | undefined;
    readonly attachments: ServerAttachments;
    readonly ready: () => boolean;
    readonly connections: () => number;
    /** The push providers' pauses, for /metrics. */
    readonly pushProviders?: () => ReadonlyMap<string, { readonly paused: boolean }>;
    /** The /v1/stream sessions; undefined when stream.enabled is false (the routes answer 404). */
    readonly streams: StreamEndpoint | undefined;
  },
): ServerHttp {
  const router = new Router(log, config.http.trust_proxy);
  const engines = () => checkEngines(deps.engines);
  addHealthRoutes(router, { databaseReachable: () => deps.storage.ping(), ready: deps.ready, engines });
  const metrics = config.metrics.enabled
    ? new RuntimeMetrics({ writes: () => deps.storage.writes(), connections: deps.connections, engines, ...(deps.pushProviders ? { pushProviders: deps.pushProviders } : {}) })
    : undefined;
  // With a listener of its own, /metrics is on that one only: the main port answers 404 like any unknown path.
  const metricsRouter = metrics && config.metrics.listen !== '' ? new Router(log, false) : undefined;
  if (metrics) addMetricsRoute(metricsRouter ?? router, () => metrics.render(), config.metrics.token);
  addAccountRoutes(router, deps.accounts);
  if (config.web.enabled && !addWebRoutes(router)) log.warn('the web client is not built into this chatd: / answers 404 (run npm run build)');
  // The socket library takes WebSocket upgrades first; a plain GET here is a client mistake worth explaining.
  router.add('GET', WS_PATH, () =>
    errorResponse(new ChatError('upgrade_required', `${WS_PATH} speaks WebSocket only; connect with a WebSocket client`)),
  );
  const authenticate = bearerAuthenticator(deps.accounts);
  addPushRoutes(router, authenticate, deps.pushTokens, deps.webPushKey);
  if (deps.streams) {
    addStreamRoutes(router, deps.streams, authenticate, {
      maxBatchFrames: config.stream.max_batch_frames,
      maxBodyBytes: config.http.max_body_bytes,
      maxFrameBytes: config.websocket.max_frame_bytes,
    });
  }
  // attachments.enabled = false: no upload routes (404), while what was sent before stays readable.
  if (deps.attachments.uploads) addUploadRoutes(router, authenticate, deps.attachments.uploads, { maxFileBytes: config.attachments.max_file_bytes });
  addAttachmentRoutes(router, { authenticate, downloads: deps.attachments.downloads });
  let inFlight = 0;
  const handler: HttpHandler = async (request, context) => {
    inFlight++;
    try {
      return await router.handle(request, context);
    } finally {
      inFlight--;
    }
  };
  return { handler, streamsBody: (method, path) => router.streamsBody(method, path), inFlight: () => inFlight, metrics, metricsRouter };
}
