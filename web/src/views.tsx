import { Fragment } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ClientMessage, MessageStatus, ThreadJson } from '../../src/client/browser.js';
import { attachmentSummary, attachmentsOf } from './attachment-sdk.js';
import { MessageAttachments } from './attachments.js';
import { Composer, attachFiles, useFileDrop } from './composer.js';
import { DevicesPanel, EncryptionBanners, HeldNotice, IdentityWarnings, LockMark, SafetyNumberPanel, VerifiedBadge, e2eProblem } from './e2e-views.js';
import { GroupPanel } from './group-panel.js';
import { Linkified } from './links.js';
import { MessageInfo } from './message-info.js';
import { DeletedBody, EditedMark, MessageShell, MessageText, NewerMessages } from './message-parts.js';
import type { ChatModel, PendingMessage } from './model.js';
import { Suggestions, lastWord, useUserSuggestions, withLastWord } from './people.js';
import { ReplyQuote } from './reply.js';
import { SearchBox, SearchResults } from './search.js';
import { SettingsPanel } from './settings.js';
import { NotificationBanner, UnreadDivider, useScrollToDivider } from './thread-extras.js';

export function ChatScreen({ model }: { model: ChatModel }) {
  const open = model.threads.find((t) => t.id === model.openThread);
  return (
    <div class="shell" data-standing={model.e2e.standing}>
      <EncryptionBanners model={model} />
      <NotificationBanner model={model} />
      <div class="chat" data-view={open ? 'thread' : 'list'}>
        <Sidebar model={model} />
        {open ? <ThreadView model={model} thread={open} /> : <section class="thread empty">Pick a chat, or start one.</section>}
      </div>
    </div>
  );
}

const STATE_TEXT: Record<string, string> = {
  connecting: 'Connecting…',
  syncing: 'Catching up…',
  online: 'Online',
  offline: 'Offline',
  stopped: 'Stopped',
};

/** On a fallback transport the badge names it, and its tooltip says why (docs/web.md). */
const FALLBACK_TEXT: Record<string, { name: string; how: string }> = {
  stream: { name: 'stream', how: 'an event stream over HTTP' },
  poll: { name: 'long poll', how: 'long polling over HTTP, which is slower' },
};

function ConnectionBadge({ model }: { model: ChatModel }) {
  const pending = model.pendingCount > 0 && model.connection !== 'online' ? ` · ${model.pendingCount} waiting to send` : '';
  const fallback = model.connection === 'online' && model.transport !== undefined ? FALLBACK_TEXT[model.transport] : undefined;
  const title = fallback
    ? `This network blocks WebSockets, so chatd uses ${fallback.how}. Messages still arrive; chatd tries WebSockets again every minute and switches back when they work.`
    : undefined;
  return (
    <span class={`connection ${model.connection}`} role="status" data-testid="connection" data-transport={model.transport} title={title}>
      {STATE_TEXT[model.connection] ?? model.connection}
      {fallback && ` (${fallback.name})`}
      {pending}
    </span>
  );
}

function Sidebar({ model }: { model: ChatModel }) {
  const [form, setForm] = useState<'direct' | 'group' | 'devices' | 'settings' | undefined>();
  const [directName, setDirectName] = useState('');
  const [groupMembers, setGroupMembers] = useState('');
  const directSuggestions = useUserSuggestions(model, form === 'direct' ? directName : '');
  const memberSuggestions = useUserSuggestions(model, form === 'group' ? lastWord(groupMembers) : '');
  // The form just opened takes the keyboard (autofocus does not work once the page has a focused element), in
  // the same update that draws it: as a plain effect the focus moved a frame later, and keys typed at once
  // after the click (a fast typist, a busy machine) went nowhere.
  const opened = useRef<HTMLFormElement>(null);
  useLayoutEffect(() => opened.current?.querySelector('input')?.focus(), [form]);
  const startDirect = async (event: Event | undefined, picked?: string): Promise<void> => {
    event?.preventDefault();
    const username = (picked ?? directName).trim();
    let thread: ThreadJson | undefined;
    if (await model.act(async () => (thread = await model.startDirect(username)), { refresh: false }) && thread) {
      setForm(undefined);
      setDirectName('');
      model.putThread(thread);
      await model.open(thread.id);
    }
  };
  const startGroup = async (event: Event): Promise<void> => {
    event.preventDefault();
    const data = new FormData(event.currentTarget as HTMLFormElement);
    const members = groupMembers.split(/[\s,]+/).filter(Boolean);
    let thread: ThreadJson | undefined;
    if (await model.act(async () => (thread = await model.startGroup(String(data.get('title') ?? ''), members)), { refresh: false }) && thread) {
      setForm(undefined);
      setGroupMembers('');
      model.putThread(thread);
      await model.open(thread.id);
    }
  };
  return (
    <aside class="sidebar">
      <header>
        <strong>{model.session.user.display_name}</strong>
        <ConnectionBadge model={model} />
        <button type="button" class="link" onClick={() => setForm(form === 'settings' ? undefined : 'settings')} aria-expanded={form === 'settings'}>
          Settings
        </button>
        <button type="button" class="link" onClick={() => model.logOut()}>
          Log out
        </button>
      </header>
      <div class="actions">
        <button type="button" onClick={() => setForm(form === 'direct' ? undefined : 'direct')}>New chat</button>
        <button type="button" onClick={() => setForm(form === 'group' ? undefined : 'group')}>New group</button>
        <button type="button" class="link" onClick={() => setForm(form === 'devices' ? undefined : 'devices')} aria-expanded={form === 'devices'}>
          Devices
        </button>
      </div>
      {form === 'devices' && <DevicesPanel model={model} />}
      {form === 'settings' && <SettingsPanel model={model} />}
      {form === 'direct' && (
        <form class="inline stacked" ref={opened} onSubmit={(event) => void startDirect(event)}>
          <div class="inline-row">
            <input
              name="username"
              value={directName}
              onInput={(event) => setDirectName(event.currentTarget.value)}
              placeholder="name or username"
              aria-label="Username to chat with"
              autocomplete="off"
              required
            />
            <button type="submit">Start</button>
          </div>
          <Suggestions users={directSuggestions} label="People found" onPick={(user) => void startDirect(undefined, user.username)} />
        </form>
      )}
      {form === 'group' && (
        <form class="inline stacked" ref={opened} onSubmit={startGroup}>
          <input name="title" placeholder="group name" aria-label="Group name" required />
          {/* The button beside the field and the suggestions below both, as in New chat: suggestions that
              arrive while the pointer is on its way to the button do not move it. */}
          <div class="inline-row">
            <input
              name="members"
              value={groupMembers}
              onInput={(event) => setGroupMembers(event.currentTarget.value)}
              placeholder="usernames, separated by spaces"
              aria-label="Members"
              autocomplete="off"
            />
            <button type="submit">Create group</button>
          </div>
          <Suggestions users={memberSuggestions} label="People to add" onPick={(user) => setGroupMembers(withLastWord(groupMembers, user.username))} />
        </form>
      )}
      <SearchBox model={model} />
      {model.error && !model.openThread && <p class="error" role="alert">{model.error}</p>}
      <SearchResults model={model} />
      <nav aria-label="Chats" hidden={model.msg.search !== undefined}>
        <ul class="threads">
          {model.threads.map((thread) => (
            <li key={thread.id}>
              <ThreadItem model={model} thread={thread} />
            </li>
          ))}
        </ul>
      </nav>
    </aside>
  );
}

function ThreadItem({ model, thread }: { model: ChatModel; thread: ThreadJson }) {
  const last = thread.last_message;
  // The list's last message comes from the server as sent: an encrypted one is shown as this page opened it, when it did.
  const shown: ClientMessage | undefined = last ? (model.latest.get(thread.id)?.seq === last.seq ? model.latest.get(thread.id) : last) : undefined;
  const preview = shown ? previewOf(model, shown) : 'No messages yet';
  const peerOnline = thread.peer ? model.presence.get(thread.peer.id)?.online : undefined;
  const unread = model.unreadShown(thread);
  return (
    <button type="button" class={`thread-item${thread.id === model.openThread ? ' current' : ''}`} onClick={() => void model.open(thread.id)} data-thread={thread.id}>
      <span class="title-row">
        {peerOnline !== undefined && <span class={`dot${peerOnline ? ' online' : ''}`} aria-label={peerOnline ? 'online' : 'offline'} />}
        <span class="title">{model.title(thread)}</span>
        {model.e2e.isEncrypted(thread) && <LockMark />}
        {thread.peer && model.e2e.isVerified(thread.peer.id) && <VerifiedBadge />}
        {thread.muted && <span class="muted-label">muted</span>}
      </span>
      <span class="preview">
        {shown?.kind === 'e2e' && shown.e2e?.status !== 'ok' && <LockMark />} {preview}
      </span>
      {unread > 0 && (
        <span class={`badge${thread.muted ? ' quiet' : ''}`} aria-label={`${unread} unread`} data-testid="unread">
          {unread}
        </span>
      )}
    </button>
  );
}

function ThreadView({ model, thread }: { model: ChatModel; thread: ThreadJson }) {
  const [showMembers, setShowMembers] = useState(false);
  /** Whose safety number is shown (the peer of a direct chat, or a member whose identity changed). */
  const [safetyWith, setSafetyWith] = useState<number>();
  useLayoutEffect(() => setSafetyWith(undefined), [thread.id]);
  const encrypted = model.e2e.isEncrypted(thread);
  const messages = model.messages.get(thread.id) ?? [];
  const pending = model.pending(thread.id);
  const typing = model.typingIn(thread.id).filter((u) => u.id !== model.session.user.id);
  const failed = model.failed.get(thread.id) ?? [];
  const newerAfter = model.msg.newerAfter.get(thread.id);
  const list = useRef<HTMLOListElement>(null);
  const atBottom = useRef(true);
  const fromBottom = useRef(0);
  // At the bottom, follow new messages; elsewhere keep the place being read (older pages load above it).
  useLayoutEffect(() => {
    const element = list.current;
    if (!element) return;
    element.scrollTop = atBottom.current ? element.scrollHeight : element.scrollHeight - fromBottom.current;
  }, [messages.length, pending.length, failed.length, thread.id]);
  useLayoutEffect(() => {
    atBottom.current = true;
  }, [thread.id]);
  const firstUnread = model.firstUnread(thread.id);
  useScrollToDivider(list, thread.id, firstUnread, { atBottom, fromBottom });
  const peer = thread.peer ? model.presence.get(thread.peer.id) : undefined;
  const drop = useFileDrop((files) => {
    if (thread.member) attachFiles(model, thread, files);
  });
  const subtitle = thread.kind === 'group' ? `${thread.member_count} members` : peer ? (peer.online ? 'online' : lastSeen(peer.last_active_at)) : '';
  return (
    <section class={`thread${drop.dragging ? ' dragging' : ''}`} aria-label={model.title(thread)} {...drop.handlers}>
      {drop.dragging && thread.member && (
        <div class="drop-zone" data-testid="drop-zone" aria-hidden="true">
          <span>Drop files to send them to {model.title(thread)}</span>
        </div>
      )}
      <header>
        <button type="button" class="back" onClick={() => void model.open(undefined)} aria-label="Back to chats">
          ←
        </button>
        <div class="heading">
          <h2>
            {encrypted && <LockMark />} {model.title(thread)} {thread.peer && model.e2e.isVerified(thread.peer.id) && <VerifiedBadge />}
          </h2>
          <span class="subtitle">
            <span data-testid="encryption">{encrypted ? 'End-to-end encrypted' : 'Not encrypted'}</span>
            {subtitle && ` · ${subtitle}`}
          </span>
        </div>
        {thread.peer && model.e2e.standing !== 'pending' && (
          <button type="button" class="link" onClick={() => setSafetyWith(safetyWith === undefined ? thread.peer?.id : undefined)} aria-expanded={safetyWith !== undefined}>
            Verify safety number
          </button>
        )}
        <button type="button" class="link" onClick={() => void model.act(() => model.client.updateThread(thread.id, { muted: !thread.muted }))}>
          {thread.muted ? 'Unmute' : 'Mute'}
        </button>
        {thread.kind === 'group' && (
          <button type="button" class="link" onClick={() => setShowMembers(!showMembers)} aria-expanded={showMembers}>
            Members
          </button>
        )}
      </header>
      {showMembers && <GroupPanel model={model} thread={thread} onVerify={setSafetyWith} />}
      {model.msg.info?.thread_id === thread.id && <MessageInfo key={model.msg.info.id} model={model} message={model.msg.info} onClose={() => model.msg.showInfo(undefined)} />}
      {safetyWith !== undefined && <SafetyNumberPanel key={safetyWith} model={model} userId={safetyWith} name={model.nameOf(safetyWith)} onClose={() => setSafetyWith(undefined)} />}
      {model.error && <p class="error" role="alert">{model.error}</p>}
      <ol
        class="messages"
        ref={list}
        aria-live="polite"
        onScroll={(event) => {
          const element = event.currentTarget;
          fromBottom.current = element.scrollHeight - element.scrollTop;
          atBottom.current = element.scrollHeight - element.scrollTop - element.clientHeight < 40;
        }}
      >
        {model.hasOlder.get(thread.id) && (
          <li class="older">
            <button type="button" class="link" onClick={() => void model.act(() => model.loadOlder(thread.id))}>
              Load older messages
            </button>
          </li>
        )}
        {messages.map((message) => (
          <Fragment key={message.seq}>
            {message.seq === firstUnread && <UnreadDivider />}
            <MessageItem model={model} message={message} />
            {newerAfter === message.seq && <NewerMessages model={model} thread={thread} />}
          </Fragment>
        ))}
        <IdentityWarnings model={model} thread={thread} onVerify={setSafetyWith} />
        {pending.map((message) => (
          <li key={message.client_msg_id} class="message own pending" data-testid="pending">
            <span class="body">{pendingText(message)}</span>
            <span class="meta">sending…</span>
          </li>
        ))}
        {failed.map((message) => (
          <li key={message.client_msg_id} class="message own failed">
            <span class="body">{pendingText(message)}</span>
            <span class="meta">not sent</span>
          </li>
        ))}
      </ol>
      <p class="typing" aria-live="polite">
        {typing.length > 0 ? `${typing.map((u) => u.display_name).join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…` : ' '}
      </p>
      {thread.member && <HeldNotice model={model} thread={thread} onVerify={setSafetyWith} />}
      {thread.member ? <Composer model={model} thread={thread} /> : <p class="left-note">You are no longer a member of this group.</p>}
    </section>
  );
}

function MessageItem({ model, message }: { model: ChatModel; message: ClientMessage }) {
  if (message.kind === 'system') return <li class="system">{systemText(model, message)}</li>;
  const own = message.sender_id === model.session.user.id;
  const status = model.tick(message.thread_id, message.seq, model.statuses.get(message.client_msg_id));
  const sender = model.users.get(message.sender_id)?.display_name ?? `user ${message.sender_id}`;
  const problem = message.kind === 'e2e' && message.e2e?.status !== 'ok';
  const body = textOf(message);
  return (
    <MessageShell model={model} message={message} className={`message${own ? ' own' : ''}${problem ? ' e2e-problem' : ''}`} attributes={{ 'data-seq': message.seq, 'data-e2e': message.e2e?.status }}>
      {!own && <span class="sender">{sender}</span>}
      <ReplyQuote model={model} message={message} />
      {message.deleted ? (
        <DeletedBody />
      ) : (
        <>
          <MessageAttachments model={model} message={message} />
          {body && (
            <span class="body">
              <MessageText model={model} message={message} text={body} plain={(run) => <Linkified text={run} />} />
            </span>
          )}
        </>
      )}
      <span class="meta">
        <EditedMark message={message} />
        {time(message.created_at)}
        {own && <Ticks status={status} />}
      </span>
    </MessageShell>
  );
}

function Ticks({ status }: { status: MessageStatus }) {
  if (status === 'read') return <span class="ticks read" title="read" data-testid="ticks">✓✓</span>;
  if (status === 'delivered') return <span class="ticks" title="delivered" data-testid="ticks">✓✓</span>;
  if (status === 'failed') return <span class="ticks failed" title="not sent">!</span>;
  return <span class="ticks" title="sent" data-testid="ticks">✓</span>;
}

function textOf(message: ClientMessage): string {
  if (message.kind === 'e2e' && message.e2e?.status !== 'ok') return e2eProblem(message.e2e?.status);
  const text = (message.body as { text?: unknown } | null)?.text;
  if (typeof text === 'string') return text;
  // Files alone: no words to show (the attachments are the message).
  if (attachmentsOf(message).length > 0 || message.body === null || message.body === undefined) return '';
  return JSON.stringify(message.body);
}

function previewOf(model: ChatModel, message: ClientMessage): string {
  if (message.kind === 'system') return systemText(model, message);
  if (message.deleted) return 'This message was deleted';
  return textOf(message) || attachmentSummary(attachmentsOf(message));
}

function pendingText(message: PendingMessage): string {
  const files = message.attachments > 0 ? `[${message.attachments} ${message.attachments === 1 ? 'file' : 'files'}]` : '';
  return [files, message.text].filter(Boolean).join(' ');
}

function systemText(model: ChatModel, message: ClientMessage): string {
  const body = message.body as { event?: string; title?: string; user_ids?: number[]; user_id?: number; role?: string };
  const actor = model.users.get(message.sender_id)?.display_name ?? 'Someone';
  const name = (id: number | undefined): string => (id === undefined ? 'someone' : (model.users.get(id)?.display_name ?? `user ${id}`));
  switch (body.event) {
    case 'group_created':
      return `${actor} created the group “${body.title ?? ''}”`;
    case 'members_added':
      return `${actor} added ${(body.user_ids ?? []).map(name).join(', ')}`;
    case 'member_removed':
      return `${actor} removed ${name(body.user_id)}`;
    case 'member_left':
      return `${name(body.user_id)} left`;
    case 'renamed':
      return `${actor} renamed the group to “${body.title ?? ''}”`;
    case 'role_changed':
      return body.role === 'owner' ? `${actor} made ${name(body.user_id)} the owner` : `${actor} made ${name(body.user_id)} ${body.role === 'admin' ? 'an admin' : 'a member'}`;
    case 'e2e_required':
      return `${actor} turned on end-to-end encryption`;
    default:
      return `${actor} changed the group`;
  }
}

/** Made once: each toLocaleTimeString call with options builds a formatter, which cost seconds per burst of messages (every message is drawn again on every event). */
const TIME = new Intl.DateTimeFormat([], { hour: '2-digit', minute: '2-digit' });

function time(ms: number): string {
  return TIME.format(ms);
}

function lastSeen(ms: number | null): string {
  return ms === null ? 'offline' : `last seen ${new Date(ms).toLocaleString([], { dateStyle: 'short', timeStyle: 'short' })}`;
}
