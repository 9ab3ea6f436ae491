/**
 * Every configuration key: its type, default, allowed values and doc.
 * This one table is the source of config.example.toml (scripts/gen-config-example.ts,
 * checked by a test), of validation, and of the environment variable names.
 */

interface KeyBase<T> {
  readonly default: T;
  readonly doc: string;
  /** A command-line flag of `chatd serve` that sets this key, if any. */
  readonly flag?: string;
}
export interface StringKey extends KeyBase<string> {
  readonly type: 'string';
  readonly nonEmpty: boolean;
}
export interface IntegerKey extends KeyBase<number> {
  readonly type: 'integer';
  readonly min: number;
  readonly max: number;
}
export interface BooleanKey extends KeyBase<boolean> {
  readonly type: 'boolean';
}
export interface EnumKey<V extends string = string> extends KeyBase<V> {
  readonly type: 'enum';
  readonly values: readonly V[];
}
export type KeySpec = StringKey | IntegerKey | BooleanKey | EnumKey;

const text = (def: string, doc: string, extra: { flag?: string; nonEmpty?: boolean } = {}): StringKey => ({
  type: 'string',
  default: def,
  doc,
  nonEmpty: extra.nonEmpty ?? true,
  ...(extra.flag ? { flag: extra.flag } : {}),
});
const integer = (def: number, min: number, max: number, doc: string, flag?: string): IntegerKey => ({
  type: 'integer',
  default: def,
  min,
  max,
  doc,
  ...(flag ? { flag } : {}),
});
const boolean = (def: boolean, doc: string): BooleanKey => ({ type: 'boolean', default: def, doc });
const oneOf = <V extends string>(values: readonly V[], def: NoInfer<V>, doc: string, flag?: string): EnumKey<V> => ({
  type: 'enum',
  values,
  default: def,
  doc,
  ...(flag ? { flag } : {}),
});

const MiB = 1024 * 1024;

export const schema = {
  server: {
    doc: 'Where chatd listens and how it stops.',
    keys: {
      host: text('0.0.0.0', 'Address to listen on. "0.0.0.0" is every IPv4 interface; "127.0.0.1" only this machine.', {
        flag: '--host',
      }),
      port: integer(8080, 0, 65535, 'TCP port for HTTP and WebSocket. 0 picks a free port (printed at start).', '--port'),
      transport: oneOf(
        ['auto', 'uws', 'node'] as const,
        'auto',
        'Socket implementation. "uws" is uWebSockets.js (fast; its native addon loads on Node 20 to 25 where the C library is recent enough: see the table in the README), "node" is node:http + ws. "auto" uses uws when its native addon loads and node otherwise, with a warning.',
        '--transport',
      ),
      shutdown_timeout_ms: integer(
        10_000,
        100,
        600_000,
        'On SIGTERM/SIGINT: how long to wait for open requests and sockets before closing the database and exiting anyway.',
      ),
    },
  },
  tls: {
    doc: 'HTTPS and WSS served by chatd itself (docs/operations.md, "TLS from the configuration"). Off while cert and key are empty; behind a reverse proxy that terminates TLS, leave them empty. Both files are read again on SIGHUP.',
    keys: {
      cert: text('', 'Path of the certificate chain, PEM: the server certificate first, then its intermediates (Let\'s Encrypt\'s fullchain.pem).', { nonEmpty: false }),
      key: text('', "Path of the certificate's private key, PEM, without a passphrase (Let's Encrypt's privkey.pem).", { nonEmpty: false }),
    },
  },
  http: {
    doc: 'HTTP API limits.',
    keys: {
      max_body_bytes: integer(64 * 1024, 1024, 16 * MiB, 'Largest request body accepted; larger ones get 413.'),
      trust_proxy: boolean(
        false,
        'Take the client address from X-Forwarded-For, for HTTP requests and WebSocket connections (set this only behind a reverse proxy you run; it is used for rate limits, and without it every client behind the proxy shares its address).',
      ),
    },
  },
  storage: {
    doc: 'The database: SQLite in storage.dir (the default, one node), or PostgreSQL when storage.url is set (several nodes: docs/scaling.md).',
    keys: {
      dir: text('./chatd-data', 'Data directory; the SQLite database is chatd.db inside it, the admin audit log and the server lock beside it. Relative paths start at the working directory.', {
        flag: '--data',
      }),
      url: text(
        '',
        'Empty: SQLite, in storage.dir. "postgres://user:password@host:5432/database" (or postgresql://): PostgreSQL, which every node of a deployment shares; chatd migrates it at start. Grow from SQLite with `chatd db copy --to URL`. The password is never logged; keep it in the environment or in a file only chatd\'s user can read.',
        { nonEmpty: false },
      ),
      pool_size: integer(10, 1, 1_000, 'PostgreSQL: connections this node keeps open to the database (writes go through one of them at a time, group-committed; reads share the rest). Mind the server\'s max_connections across all nodes and admin commands.'),
      synchronous: oneOf(
        ['full', 'normal'] as const,
        'full',
        'SQLite durability. "full": no acknowledged message is lost to a crash or a power cut (delivery acks are stored as with "normal": losing one only repeats messages). "normal": faster; a power cut (not a process crash) may lose the last moments.',
      ),
      busy_timeout_ms: integer(5_000, 0, 600_000, 'SQLite: how long a writer waits for the database lock (the admin CLI and the server share the file).'),
      wal_checkpoint_pages: integer(
        10_000,
        100,
        1_000_000,
        "The server copies its write-ahead log into the database file once the log holds this many pages (4 KiB each). SQLite's own default, 1,000, makes a busy server copy the same pages again and again: 10,000 (a log of up to about 40 MiB) costs a third less per message at moderate load.",
      ),
      revocation_poll_ms: integer(
        250,
        10,
        60_000,
        'How often the server looks whether another process (the admin CLI: device revoke, user disable, user delete, user passwd --revoke-devices) changed the database, and closes the connections a revocation concerns: they close within about this. A look that finds nothing costs a few microseconds.',
      ),
    },
  },
  bus: {
    doc: 'How the nodes of a deployment reach each other (docs/scaling.md): live messages, presence, typing, revocations. Empty url: one node, in memory.',
    keys: {
      url: text(
        '',
        'Empty: one node, everything live in its memory. "redis://[user:password@]host:6379[/db]" (or rediss:// for TLS): Redis, shared by every node; needs storage.url (nodes that share a bus share one database). The password is never logged.',
        { nonEmpty: false },
      ),
      prefix: text('chatd:', 'Prefix of every Redis key and channel chatd uses, so that two deployments can share one Redis.'),
      heartbeat_ms: integer(
        2_000,
        100,
        60_000,
        'How often a node tells the others it is alive. A node silent for three of these is dead: another node writes the inboxes of the devices it held and frees them.',
      ),
    },
  },
  accounts: {
    doc: 'Who may create an account.',
    keys: {
      registration: oneOf(
        ['open', 'invite', 'closed'] as const,
        'invite',
        'Registration over HTTP. "open": anyone who reaches the server; "invite": only with a code from `chatd invite create`; "closed": only an admin with `chatd user add`. The default keeps a server reachable from the internet from filling with strangers.',
      ),
      password_min_length: integer(8, 6, 128, 'Shortest password accepted (in characters).'),
      user_search: oneOf(
        ['prefix', 'exact', 'off'] as const,
        'prefix',
        'Finding people (the users_search request). "prefix": by the start of a username or display name, at least 2 characters; "exact": only a whole username; "off": not at all (people must already share a thread or be contacts).',
      ),
    },
  },
  passwords: {
    doc: 'argon2id cost for new password hashes. Existing hashes keep their own parameters and are upgraded at the next login.',
    keys: {
      memory_kib: integer(65_536, 1_024, 4 * MiB, 'Memory per hash, in KiB.'),
      time_cost: integer(3, 1, 64, 'Passes over the memory.'),
      parallelism: integer(4, 1, 16, 'Lanes (threads) per hash.'),
    },
  },
  rate_limit: {
    doc: 'Login and registration attempts. Each limit allows a burst of that many, refilled evenly over window_seconds. Past a refusing limit the answer is 429 with Retry-After. No limit locks an account: what one address does counts against that address only, and the limit across all addresses slows logins down without refusing the right password.',
    keys: {
      login_per_username: integer(5, 1, 100_000, 'Wrong passwords per username from one client address per window. Past it that address is refused for that username; other addresses are not.'),
      login_per_address: integer(30, 1, 100_000, 'Attempts per client address per window (login and registration together, right or wrong).'),
      login_slowdown_after: integer(100, 1, 1_000_000, 'Wrong passwords per username from all addresses together per window. Past it every login attempt for that username waits login_slowdown_ms before its answer; none is refused.'),
      login_slowdown_ms: integer(1_000, 0, 60_000, 'The wait, in milliseconds, once login_slowdown_after is passed.'),
      window_seconds: integer(60, 1, 86_400, 'The window, in seconds.'),
    },
  },
  websocket: {
    doc: 'Live connections (/v1/ws).',
    keys: {
      auth_timeout_ms: integer(5_000, 100, 120_000, 'A connection that has not authenticated within this is closed (code 4001).'),
      heartbeat_interval_ms: integer(25_000, 100, 600_000, 'How often clients send a heartbeat; announced in the welcome frame.'),
      heartbeat_timeout_ms: integer(60_000, 200, 3_600_000, 'A connection silent for this long is closed (code 4003). Must exceed heartbeat_interval_ms.'),
      max_frame_bytes: integer(
        64 * 1024,
        1024,
        16 * MiB,
        'Largest WebSocket frame accepted. A larger one gets the error payload_too_large and the connection carries on; one over twice this size closes the connection (code 1009; the uws transport drops it without a close frame). At least messages.max_body_bytes + 512.',
      ),
      frames_per_second: integer(
        30,
        1,
        100_000,
        'Frames a connection may send per second, on average; a burst of twice as many is allowed. Past it a frame gets the error rate_limited.',
      ),
      max_refused_frames: integer(
        50,
        1,
        100_000,
        'A connection whose frames keep being refused (rate_limited, or not valid frames) this many times in a row is closed: code 4004 for a flood, 1008 for garbage.',
      ),
      max_buffered_bytes: integer(
        1 * MiB,
        16 * 1024,
        256 * MiB,
        'Slow consumers: a connection with more than this waiting to be written to it is closed (code 4005) and catches up by sync when it reconnects.',
      ),
    },
  },
  stream: {
    doc: 'The fallback transport for networks that break WebSockets: an event stream down and batched POSTs up (/v1/stream; docs/protocol.md, "The stream transport"). The same session rules as /v1/ws apply (websocket.* limits, heartbeats, slow consumers).',
    keys: {
      enabled: boolean(true, 'Offer /v1/stream. false: clients that cannot open a WebSocket cannot connect.'),
      resume_frames: integer(
        1024,
        16,
        1_000_000,
        'Frames each stream session keeps after sending them, so that a client whose stream was cut resumes (Last-Event-ID) without loss; one that asks for an older frame is told to open a new session (its inbox and sync bring what it missed). Bounded in bytes too, by websocket.max_buffered_bytes.',
      ),
      keepalive_ms: integer(20_000, 50, 600_000, 'A comment line is written to an idle event stream this often, so that proxies do not take it for dead.'),
      poll_timeout_ms: integer(25_000, 50, 600_000, 'How long a long-poll request waits for a frame before it is answered empty (the client asks again at once).'),
      max_batch_frames: integer(100, 1, 10_000, 'Frames one POST may carry. A larger batch is refused whole (413) and the session carries on. Its bytes are bounded by websocket.max_frame_bytes per frame and, in all, by the larger of http.max_body_bytes and websocket.max_frame_bytes + 1 KiB (so that any frame the WebSocket takes fits in a POST).'),
    },
  },
  limits: {
    doc: 'Limits per client address, user and device, across connections; counted per server process (docs/protocol.md, "Limits").',
    keys: {
      pause_after_flood_seconds: integer(
        10,
        1,
        3_600,
        'After a connection is closed for flooding (4004), its device and its user are refused for this long: reconnecting does not reset the frame limit. No address is paused (others may share it).',
      ),
      connections_per_address_per_minute: integer(
        300,
        1,
        1_000_000,
        'New WebSocket connections per client address per minute (a burst of this many, refilled evenly over the minute). Behind a NAT or a reverse proxy many users share an address: see http.trust_proxy.',
      ),
      auth_per_address_per_minute: integer(300, 1, 1_000_000, 'Authentication attempts (auth frames, whatever their token) per client address per minute.'),
      auth_per_user_per_minute: integer(60, 1, 1_000_000, 'Successful authentications (connections) per user per minute, all devices together.'),
      auth_per_device_per_minute: integer(20, 1, 1_000_000, 'Successful authentications (connections) per device per minute.'),
      max_unauthenticated: integer(
        2_000,
        1,
        10_000_000,
        'Connections open but not yet authenticated, in total. Each has websocket.auth_timeout_ms to send its auth frame.',
      ),
      max_unauthenticated_per_address: integer(50, 1, 10_000_000, 'Connections open but not yet authenticated, per client address.'),
      max_connections_per_device: integer(10, 1, 1_000_000, 'Live (authenticated) connections one device may hold at once.'),
      max_connections_per_user: integer(50, 1, 1_000_000, 'Live (authenticated) connections one user may hold at once, all devices together.'),
      user_sends_per_second: integer(
        30,
        1,
        1_000_000,
        'Messages one user may send per second, on average, across all their connections and devices; a burst of twice as many is allowed. Past it a send gets rate_limited and nothing is stored.',
      ),
    },
  },
  messages: {
    doc: 'Messages and threads.',
    keys: {
      max_body_bytes: integer(
        16 * 1024,
        16,
        4 * MiB,
        'Largest message body (its compact JSON text, in bytes). Must be at least 512 less than websocket.max_frame_bytes: the rest of a send frame needs that room, and chatd refuses to start otherwise. (http.max_body_bytes is another limit, for HTTP request bodies.)',
      ),
      max_group_members: integer(1_000, 2, 100_000, 'Most members a group may have.'),
      read_diffusion_above: integer(
        100,
        2,
        100_000,
        'Groups with more members than this write no offline-inbox rows: online devices get messages live, the others catch up by sync on reconnect.',
      ),
      history_page_max: integer(200, 10, 10_000, 'Most messages one history or sync request returns.'),
      require_e2e: boolean(false, 'Refuse plaintext messages in every thread: only end-to-end encrypted ones are taken (kind "e2e"; see docs/e2e.md).'),
      edit_window_seconds: integer(
        172_800,
        0,
        100 * 365 * 86_400,
        'How long after sending the author may edit a message (seconds; 172800 is 48 hours). 0: no limit. Deleting for everyone has no limit.',
      ),
    },
  },
  search: {
    doc: 'Full-text search of messages (docs/search.md). End-to-end encrypted threads are searched on the clients, never on the server.',
    keys: {
      enabled: boolean(true, 'Answer search requests. false: a search gets the error not_found (the index is still kept up to date, so turning it back on needs nothing else).'),
      searches_per_minute: integer(
        60,
        1,
        100_000,
        "Searches one user may make per minute (a burst of 10); past it a search gets rate_limited. On SQLite a search holds the server's one thread while it runs, so this bounds what one user can take of it.",
      ),
    },
  },
  inbox: {
    doc: "Each device's offline inbox: the messages it has not yet acknowledged, sent to it first on reconnect.",
    keys: {
      max_messages: integer(
        10_000,
        10,
        10_000_000,
        'Past this many messages a device\'s inbox is dropped and the device is told to sync by thread cursors instead (nothing is lost).',
      ),
      max_age_days: integer(30, 1, 3650, 'Inbox entries older than this are dropped the same way.'),
    },
  },
  e2e: {
    doc: 'End-to-end encryption (docs/e2e.md): the device messages by which a device hands the account key and message keys to another device of the same user.',
    keys: {
      max_device_message_bytes: integer(
        45_056,
        1_024,
        4 * MiB,
        'Largest device message payload (decoded bytes); a larger one gets payload_too_large. The device_send frame must also fit websocket.max_frame_bytes: the payload travels as base64 (4/3 of its size), so the default of 44 KiB leaves room in the default 64 KiB frame.',
      ),
      max_device_queue_bytes: integer(
        64 * MiB,
        64 * 1024,
        4096 * MiB,
        'Most payload bytes from one device waiting for another (each sender has its own queue at each target); past it device_send gets rate_limited until the target fetches and acknowledges its messages.',
      ),
      max_device_queue_messages: integer(
        1_000,
        10,
        1_000_000,
        'Most messages from one device waiting for another; past it device_send gets rate_limited until the target fetches and acknowledges its messages.',
      ),
      device_message_ttl_days: integer(
        30,
        1,
        30,
        'Device messages not acknowledged within this long are dropped. At most 30: clients remember the device messages they handled for 31 days (their replay window) and refuse older ones as stale, so a longer time to live would only deliver grants that are then refused and lost.',
      ),
    },
  },
  presence: {
    doc: 'Online status.',
    keys: {
      offline_grace_ms: integer(
        10_000,
        0,
        600_000,
        "A user is shown offline only after their last connection has been closed this long, so a flapping network does not flap the indicator.",
      ),
    },
  },
  attachments: {
    doc: 'Photos, files and voice notes: uploaded over tus to /v1/uploads, stored once per distinct content under the data directory (docs/attachments.md).',
    keys: {
      enabled: boolean(true, 'Accept uploads. false: /v1/uploads answers 404 and messages with attachments are refused; attachments sent before stay readable.'),
      max_file_bytes: integer(
        900 * MiB,
        1024,
        64 * 1024 * MiB,
        'Largest file accepted; a larger Upload-Length gets 413. The default stays under 10^9 bytes, the most the uws transport takes in one request body, so a tus client may send any accepted file in one PATCH; above it, clients must send files in several PATCHes (the SDK and the web client send 4 MiB at a time).',
      ),
      user_quota_bytes: integer(10 * 1024 * MiB, 1024, Number.MAX_SAFE_INTEGER, "Bytes one user may have stored: every finished upload by its stored size, for as long as it is kept (a file sent in a message stays; one never sent is freed when collected, after gc_grace_hours), and every unfinished one by its announced length until it expires. Deduplicated content counts for each sender. An upload that would pass it gets 413."),
      allowed_types: text(
        '*',
        'Media types accepted, by what the content is (sniffed), not by the name: a comma-separated list such as "image/*, video/*, audio/*, application/pdf", or * for any. A file of another type gets 415. End-to-end encrypted uploads are ciphertext and are accepted whatever this says, unless allow_encrypted is false.',
      ),
      allow_encrypted: boolean(true, 'Accept uploads marked encrypted (end-to-end attachments, whose type the server cannot see).'),
      uploads_per_minute: integer(60, 1, 100_000, 'Uploads one user may start per minute; past it, 429 with Retry-After.'),
      upload_expiry_hours: integer(24, 1, 24 * 30, 'An upload not finished within this long is deleted; a client resuming later starts again.'),
      gc_grace_hours: integer(24, 0, 24 * 365, 'A finished upload no message references is deleted after this long, and so is content no upload names any more.'),
      gc_interval_minutes: integer(60, 1, 24 * 60, 'How often the server collects unreferenced uploads and content. chatd blobs gc runs the same by hand, and also sweeps the whole blob store for content no upload names (schedule it, e.g. weekly).'),
      max_image_pixels: integer(50_000_000, 1_000_000, 1_000_000_000, 'Images with more pixels than this (width × height) get no thumbnail and are stored as files: the guard against decompression bombs.'),
      thumbnail_pixels: integer(320, 32, 2048, 'Longest side of thumbnails (WebP) made of images in plaintext threads.'),
      link_ttl_seconds: integer(300, 10, 86_400, 'How long a signed attachment link (for <img>, <audio>, <video>) stays valid.'),
    },
  },
  push: {
    doc: 'Push notifications to devices that are offline when a message arrives (providers: [apns] and [fcm]; see docs/push.md).',
    keys: {
      preview: boolean(
        true,
        "Show the sender's name and the start of the text in notifications of plaintext messages. false: they say only that there is a new message (end-to-end encrypted ones always do).",
      ),
      max_attempts: integer(
        0,
        0,
        10_000,
        'Attempts per notification when the provider fails for a while (5xx, 429, timeouts) before it is given up. 0: no count; a notification is retried (backoff capped at 5 minutes) until max_age_seconds, so a provider outage shorter than that loses nothing. A paused provider (docs/push.md) uses no attempts.',
      ),
      max_age_seconds: integer(86_400, 60, 30 * 86_400, 'The lifetime of a notification: one the provider has not taken within this long after its message is given up (and the provider is told not to deliver it later).'),
      retry_base_ms: integer(1_000, 1, 3_600_000, 'Wait before the first retry; it doubles at each attempt (with jitter), up to 5 minutes. A paused provider is probed on the same schedule.'),
      breaker_dead_tokens: integer(
        20,
        1,
        100_000,
        'Circuit breaker: when devices of this many different users in a row get a suspect "dead token" answer from one provider (one a configuration mistake gives every token: APNs BadDeviceToken or DeviceTokenNotForTopic, FCM SENDER_ID_MISMATCH, Web Push 401 or 403) with no notification accepted between them, chatd stops removing tokens and pauses that provider. Users, not devices: one user\'s many logins count once.',
      ),
      concurrency: integer(32, 1, 1_000, 'Notifications waiting for a provider answer at once.'),
      request_timeout_ms: integer(10_000, 100, 120_000, 'A provider that has not answered within this long counts as failed for a while: the notification is retried.'),
    },
  },
  apns: {
    doc: "Apple Push Notification service, token-based (.p8 key). Disabled while key_file is empty.",
    keys: {
      key_file: text('', 'Path of the .p8 token signing key from the Apple developer account.', { nonEmpty: false }),
      key_id: text('', 'The key\'s 10-character Key ID.', { nonEmpty: false }),
      team_id: text('', 'The developer account\'s 10-character Team ID.', { nonEmpty: false }),
      bundle_id: text('', "The app's bundle id: the notification topic for devices that registered none of their own.", { nonEmpty: false }),
      environment: oneOf(['production', 'sandbox'] as const, 'production', 'Apple\'s production servers, or the sandbox ones for development builds of the app.'),
      connect_to: text('', "host:port to connect to instead of Apple's servers (a local test server). Empty: Apple's.", { nonEmpty: false }),
    },
  },
  fcm: {
    doc: 'Firebase Cloud Messaging (HTTP v1). Disabled while service_account_file is empty.',
    keys: {
      service_account_file: text('', 'Path of the Firebase service account key (JSON) of the project.', { nonEmpty: false }),
      connect_to: text('', "host:port to connect to instead of Google's servers (a local test server). Empty: Google's.", { nonEmpty: false }),
    },
  },
  webpush: {
    doc: 'Web Push to browsers (VAPID), the fourth kind of push token beside APNs and FCM (docs/push.md, "Web Push").',
    keys: {
      enabled: boolean(true, 'Send Web Push notifications to browsers that subscribed. The VAPID keys are made at the first start and kept in the data directory (vapid.json), or made with `chatd push vapid`.'),
      vapid_file: text('', 'Path of the VAPID key pair (JSON, made by `chatd push vapid`). Empty: vapid.json in the data directory, made at the first start.', { nonEmpty: false }),
      subject: text('', 'Who push services may contact about this server\'s notifications: a mailto: or https: URL. Empty: mailto:chatd@ followed by the host name.', { nonEmpty: false }),
      allowed_hosts: text(
        'fcm.googleapis.com,*.push.services.mozilla.com,*.notify.windows.com,*.push.apple.com',
        'Push services a browser subscription may point at (comma-separated host names; *. matches subdomains). chatd POSTs to the subscription\'s endpoint, so any other host is refused at registration: it would let a user make the server send requests inside your network.',
      ),
    },
  },
  web: {
    doc: 'The web client chatd serves at / (docs/web.md).',
    keys: {
      enabled: boolean(true, 'Serve the web client at / (turn off with false, or `chatd serve --no-web`, when only apps connect).'),
    },
  },
  metrics: {
    doc: "The process's own figures, for monitoring (docs/operations.md, \"Monitoring\"; docs/performance.md).",
    keys: {
      enabled: boolean(
        false,
        "Serve GET /metrics in Prometheus' text format: event-loop delay, write transactions, garbage collection, connections, CPU, memory. Keep it from the internet: set token, or listen on a local address, or both.",
      ),
      token: text(
        '',
        'When set, /metrics answers only requests with the header "Authorization: Bearer <token>" (401 otherwise). At least 16 characters; make one with `openssl rand -hex 32`. Empty: no token asked.',
        { nonEmpty: false },
      ),
      listen: text(
        '',
        'host:port of a listener of its own for /metrics (plain HTTP), such as "127.0.0.1:9464"; the main port then answers /metrics with 404. Empty: /metrics is served on the main port.',
        { nonEmpty: false },
      ),
    },
  },
  log: {
    doc: 'Logs are JSON lines on standard output (pino).',
    keys: {
      level: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, 'info', 'Least severe level written.', '--log-level'),
    },
  },
} as const;

export type Schema = typeof schema;
export type SectionName = keyof Schema;

type ValueOf<K> = K extends EnumKey<infer V> ? V : K extends KeyBase<infer T> ? T : never;

/** The validated configuration: one typed value per key of the schema. */
export type Config = {
  readonly [S in SectionName]: { readonly [K in keyof Schema[S]['keys']]: ValueOf<Schema[S]['keys'][K]> };
};

/** Sections and keys as plain iterables, for the loader and the example generator. */
export function sections(): Array<{ name: string; doc: string; keys: Array<[string, KeySpec]> }> {
  return Object.entries(schema).map(([name, section]) => ({
    name,
    doc: section.doc,
    keys: Object.entries(section.keys) as Array<[string, KeySpec]>,
  }));
}

/** CHATD_<SECTION>_<KEY>, e.g. CHATD_SERVER_PORT. */
export function envName(section: string, key: string): string {
  return `CHATD_${section}_${key}`.toUpperCase();
}

/** What a key accepts, in words, for error messages and the example file. */
export function describeAllowed(spec: KeySpec): string {
  switch (spec.type) {
    case 'string':
      return spec.nonEmpty ? 'a non-empty string' : 'a string';
    case 'integer':
      return `an integer from ${spec.min} to ${spec.max}`;
    case 'boolean':
      return 'true or false';
    case 'enum':
      return `one of ${spec.values.map((v) => JSON.stringify(v)).join(', ')}`;
  }
}
