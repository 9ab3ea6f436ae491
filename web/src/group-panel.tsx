import { useState } from 'preact/hooks';
import type { MemberJson, ThreadJson } from '../../src/client/browser.js';
import { VerifiedBadge } from './e2e-views.js';
import type { ChatModel } from './model.js';
import { Suggestions, lastWord, useUserSuggestions, withLastWord } from './people.js';

const RANK = { member: 0, admin: 1, owner: 2 } as const;

/**
 * A group's members and what the user may do with them, as the server
 * allows it: owners and admins rename the group, add people, and remove
 * those ranked below them (after a confirmation); the owner makes members
 * admins and back; anyone leaves (after a confirmation).
 */
export function GroupPanel({ model, thread, onVerify }: { model: ChatModel; thread: ThreadJson; onVerify: (userId: number) => void }) {
  const members = model.members.get(thread.id) ?? [];
  const me = model.session.user.id;
  const manager = thread.member && (thread.role === 'owner' || thread.role === 'admin');
  /** The group as the server answered a change: its members at once, without another request. */
  const applied = (result: { thread: ThreadJson; members: MemberJson[] }): void => {
    model.members.set(thread.id, result.members);
    model.putThread(result.thread);
  };
  const remove = async (member: MemberJson): Promise<void> => {
    if (!window.confirm(`Remove ${member.user.display_name} from “${model.title(thread)}”?`)) return;
    if (await model.act(() => model.client.removeMember(thread.id, member.user.id))) await model.open(thread.id, 'none');
  };
  const leave = async (): Promise<void> => {
    if (!window.confirm(`Leave “${model.title(thread)}”? You keep what was said until now, but get nothing new unless someone adds you again.`)) return;
    await model.act(() => model.client.leaveGroup(thread.id));
  };
  return (
    <div class="members">
      {manager && <RenameForm model={model} thread={thread} onRenamed={applied} />}
      <ul aria-label="Members">
        {members.map((member) => (
          <li key={member.user.id}>
            {member.user.display_name} <small>@{member.user.username} · {member.role}</small>
            {model.e2e.isVerified(member.user.id) && <VerifiedBadge />}
            {member.user.id !== me && model.e2e.standing !== 'pending' && (
              <button type="button" class="link" onClick={() => onVerify(member.user.id)}>
                Safety number
              </button>
            )}
            {member.user.id !== me && thread.member && thread.role === 'owner' && member.role !== 'owner' && (
              <button
                type="button"
                class="link"
                onClick={() => void model.act(async () => applied(await model.client.setRole(thread.id, member.user.id, member.role === 'admin' ? 'member' : 'admin')), { refresh: false })}
              >
                {member.role === 'admin' ? 'Make member' : 'Make admin'}
              </button>
            )}
            {member.user.id !== me && manager && RANK[member.role] < RANK[thread.role] && (
              <button type="button" class="link danger" onClick={() => void remove(member)}>
                Remove
              </button>
            )}
          </li>
        ))}
      </ul>
      {manager && <AddMembers model={model} thread={thread} />}
      {thread.member && (
        <button type="button" class="link danger" onClick={() => void leave()}>
          Leave group
        </button>
      )}
    </div>
  );
}

function RenameForm({ model, thread, onRenamed }: { model: ChatModel; thread: ThreadJson; onRenamed: (result: { thread: ThreadJson; members: MemberJson[] }) => void }) {
  const [editing, setEditing] = useState(false);
  if (!editing) {
    return (
      <button type="button" class="link" onClick={() => setEditing(true)}>
        Rename group
      </button>
    );
  }
  const rename = async (event: Event): Promise<void> => {
    event.preventDefault();
    const title = String(new FormData(event.currentTarget as HTMLFormElement).get('title') ?? '').trim();
    if (await model.act(async () => onRenamed(await model.client.renameGroup(thread.id, title)), { refresh: false })) setEditing(false);
  };
  return (
    <form class="inline" onSubmit={rename}>
      <input name="title" defaultValue={thread.title ?? ''} aria-label="New group name" maxLength={100} required autofocus />
      <button type="submit">Rename</button>
      <button type="button" class="link" onClick={() => setEditing(false)}>
        Cancel
      </button>
    </form>
  );
}

function AddMembers({ model, thread }: { model: ChatModel; thread: ThreadJson }) {
  const [names, setNames] = useState('');
  const suggestions = useUserSuggestions(model, lastWord(names));
  const add = async (event: Event): Promise<void> => {
    event.preventDefault();
    const usernames = names.split(/[\s,]+/).filter(Boolean);
    if (await model.act(() => model.client.addMembers(thread.id, usernames))) {
      setNames('');
      await model.open(thread.id, 'none');
    }
  };
  return (
    <form class="inline stacked" onSubmit={add}>
      <div class="inline-row">
        <input name="username" value={names} onInput={(event) => setNames(event.currentTarget.value)} placeholder="username to add" aria-label="Username to add" autocomplete="off" required />
        <button type="submit">Add</button>
      </div>
      <Suggestions users={suggestions} label="People to add" onPick={(user) => setNames(withLastWord(names, user.username))} />
    </form>
  );
}
