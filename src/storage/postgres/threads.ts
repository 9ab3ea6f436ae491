import type { StoredAccount } from '../ports/accounts.js';
import type { StoredMessage } from '../ports/messaging.js';
import type {
  Actor,
  Expectation,
  GroupChange,
  GroupOutcome,
  GroupState,
  MemberRole,
  StoredMember,
  ThreadEvent,
  ThreadKind,
  ThreadStorage,
  ThreadSummary,
} from '../ports/threads.js';
import type { PgDatabase } from './database.js';
import type { Row, Sql } from './sql.js';
import { type AppendSettings, lockThread, messageObject, writeSystemMessage } from './append.js';
import { uncountedColumns } from './unread.js';

/** The users columns as StoredAccount names them. */
const ACCOUNT = `id, username, display_name AS "displayName", password_hash AS "passwordHash", disabled, created_at AS "createdAt",
                 deleted_at AS "deletedAt", last_active_at AS "lastActiveAt"`;

/**
 * A thread as one user sees it in their list, with its member count, its last
 * visible message, the change rows at the ends of its unread range (unread.ts)
 * and a direct thread's peer: one statement for any number of threads (`$1`:
 * the user; the caller adds the WHERE and ORDER BY).
 */
const SUMMARY = `
SELECT t.id, t.kind, t.title, t.created_at AS "createdAt", t.last_seq AS "lastSeq", t.e2e_required AS "e2eRequired",
       m.role, m.joined_seq AS "joinedSeq", m.left_seq AS "leftSeq", m.read_seq AS "readSeq", m.muted, m.label,
       (SELECT count(*) FROM thread_members c WHERE c.thread_id = t.id AND c.left_seq IS NULL) AS "memberCount",
       last.message, peer.peer, ${uncountedColumns()}
  FROM thread_members m
  JOIN threads t ON t.id = m.thread_id
  LEFT JOIN LATERAL (
    -- Never a change row, nor one the user hid: the last message as history shows it.
    SELECT ${messageObject('x')} AS message
      FROM messages x
     WHERE x.thread_id = t.id AND x.seq > m.joined_seq AND x.seq <= coalesce(m.left_seq, t.last_seq) AND x.target_id IS NULL
       AND NOT EXISTS (SELECT 1 FROM hidden_messages h WHERE h.user_id = $1 AND h.message_id = x.id)
     ORDER BY x.seq DESC LIMIT 1
  ) last ON true
  LEFT JOIN LATERAL (
    SELECT json_build_object('id', u.id, 'username', u.username, 'displayName', u.display_name) AS peer
      FROM thread_members o JOIN users u ON u.id = o.user_id
     WHERE t.kind = 'direct' AND o.thread_id = t.id AND o.left_seq IS NULL AND o.user_id <> $1
     ORDER BY o.joined_at, o.user_id LIMIT 1
  ) peer ON true
 WHERE m.user_id = $1`;

type SummaryRow = Omit<ThreadSummary, 'lastMessage' | 'peer' | 'uncounted'> & {
  message: StoredMessage | null;
  peer: ThreadSummary['peer'];
  uncounted_start: number;
  uncounted_end: number;
} & Row;

function toSummary(row: SummaryRow): ThreadSummary {
  const { message, peer, uncounted_start, uncounted_end, ...rest } = row;
  return { ...rest, lastMessage: message, peer, uncounted: { atStart: Number(uncounted_start), atEnd: Number(uncounted_end) } };
}

const MEMBERS = `
SELECT m.user_id, u.username, u.display_name, m.role, m.joined_at, m.read_seq, m.delivered_seq
  FROM thread_members m JOIN users u ON u.id = m.user_id
 WHERE m.thread_id = $1 AND m.left_seq IS NULL ORDER BY m.joined_at, m.user_id`;

interface MemberRow extends Row {
  user_id: number;
  username: string;
  display_name: string;
  role: MemberRole;
  joined_at: number;
  read_seq: number;
  delivered_seq: number;
}

/**
 * ThreadStorage on PostgreSQL. Writes are units through the group commit;
 * every unit that changes a thread first locks its row (as the sends do), so
 * members, roles and seqs hold still between its check and its commit, and
 * a change decided on roles that changed meanwhile (on any node) is `stale`.
 */
export class PostgresThreadStorage implements ThreadStorage {
  constructor(
    private readonly db: PgDatabase,
    private readonly settings: AppendSettings,
  ) {}

  async userById(id: number): Promise<StoredAccount | undefined> {
    return (await this.db.read.query<StoredAccount & Row>(`SELECT ${ACCOUNT} FROM users WHERE id = $1`, [id])).rows[0];
  }

  async userByUsername(username: string): Promise<StoredAccount | undefined> {
    return (await this.db.read.query<StoredAccount & Row>(`SELECT ${ACCOUNT} FROM users WHERE lower(username) = lower($1)`, [username])).rows[0];
  }

  async list(userId: number): Promise<ThreadSummary[]> {
    const { rows } = await this.db.read.query<SummaryRow>(`${SUMMARY} ORDER BY coalesce(t.last_message_at, t.created_at) DESC, t.id DESC`, [userId]);
    return rows.map(toSummary);
  }

  details(userId: number, threadId: number): Promise<{ summary: ThreadSummary; members: StoredMember[] } | undefined> {
    return this.db.snapshot(async (sql) => {
      const row = (await sql.query<SummaryRow>(`${SUMMARY} AND m.thread_id = $2`, [userId, threadId])).rows[0];
      if (!row) return undefined;
      const members = row.leftSeq === null ? (await sql.query<MemberRow>(MEMBERS, [threadId])).rows : [];
      return {
        summary: toSummary(row),
        members: members.map((m) => ({
          user: { id: m.user_id, username: m.username, displayName: m.display_name },
          role: m.role,
          joinedAt: m.joined_at,
          readSeq: m.read_seq,
          deliveredSeq: m.delivered_seq,
        })),
      };
    });
  }

  groupState(threadId: number, userId: number): Promise<GroupState | undefined> {
    return this.db.snapshot(async (sql) => {
      const { rows } = await sql.query<{ kind: ThreadKind; e2e_required: boolean; role: MemberRole; left_seq: number | null }>(
        `SELECT t.kind, t.e2e_required, m.role, m.left_seq FROM thread_members m JOIN threads t ON t.id = m.thread_id
          WHERE m.thread_id = $1 AND m.user_id = $2`,
        [threadId, userId],
      );
      const row = rows[0];
      if (!row) return undefined;
      const members = (await sql.query<MemberRow>(MEMBERS, [threadId])).rows;
      return {
        kind: row.kind,
        e2eRequired: row.e2e_required,
        actor: { role: row.role, left: row.left_seq !== null },
        members: members.map((m) => ({ userId: m.user_id, role: m.role })),
      };
    });
  }

  openDirect(input: { userIds: readonly [number, number]; createdBy: number; now: number }): Promise<{ threadId: number; created: boolean }> {
    const [low, high] = [...input.userIds].sort((a, b) => a - b) as [number, number];
    const key = `${low}:${high}`;
    return this.db.writes.submit(async (sql) => {
      // Two nodes opening the same pair at once: the second waits on the first's row, then finds it.
      const created = await sql.query<{ id: number }>(
        `INSERT INTO threads (kind, title, direct_key, created_by, created_at) VALUES ('direct', NULL, $1, $2, $3)
         ON CONFLICT (direct_key) DO NOTHING RETURNING id`,
        [key, input.createdBy, input.now],
      );
      const id = created.rows[0]?.id;
      if (id === undefined) {
        const existing = await sql.query<{ id: number }>('SELECT id FROM threads WHERE direct_key = $1', [key]);
        return { threadId: (existing.rows[0] as { id: number }).id, created: false };
      }
      await addMembers(sql, id, [low, high], 'member', 0, input.now);
      return { threadId: id, created: true };
    });
  }

  createGroup(input: { title: string; actor: Actor; memberIds: readonly number[]; e2eRequired: boolean; event: ThreadEvent; now: number }): Promise<{ threadId: number; message: StoredMessage }> {
    return this.db.writes.submit(async (sql) => {
      const { now, actor } = input;
      const { rows } = await sql.query<{ id: number }>(
        `INSERT INTO threads (kind, title, created_by, created_at, e2e_required) VALUES ('group', $1, $2, $3, $4) RETURNING id`,
        [input.title, actor.userId, now, input.e2eRequired],
      );
      const id = (rows[0] as { id: number }).id;
      await addMembers(sql, id, [actor.userId], 'owner', 0, now);
      await addMembers(sql, id, input.memberIds, 'member', 0, now);
      const thread = await lockThread(sql, id);
      if (!thread) throw new Error(`thread ${id} vanished`);
      return { threadId: id, message: await writeSystemMessage(sql, this.settings, actor, { id, ...thread }, input.event, now) };
    });
  }

  changeGroup(input: { threadId: number; actor: Actor; expect: Expectation; change: GroupChange; now: number }): Promise<GroupOutcome> {
    return this.db.writes.submit((sql) => this.change(sql, input));
  }

  private async change(sql: Sql, input: { threadId: number; actor: Actor; expect: Expectation; change: GroupChange; now: number }): Promise<GroupOutcome> {
    const { settings } = this;
    const { threadId, actor, change, now } = input;
    // The thread's row first: nothing changes its members or seqs until this commits.
    const thread = await lockThread(sql, threadId);
    const members = thread ? (await sql.query<MemberRow>(MEMBERS, [threadId])).rows : [];
    if (!thread || !holds(members, actor.userId, input.expect)) return { kind: 'stale' };
    const system = (event: ThreadEvent, memberCount = thread.memberCount): Promise<StoredMessage> =>
      writeSystemMessage(sql, settings, actor, { id: threadId, lastSeq: thread.lastSeq, memberCount }, event, now);
    switch (change.kind) {
      case 'add': {
        const current = new Set(members.map((m) => m.user_id));
        const fresh = [...new Set(change.userIds)].filter((id) => !current.has(id));
        if (fresh.length === 0) return { kind: 'changed', message: null, added: [] };
        if (current.size + fresh.length > change.maxMembers) return { kind: 'refused', reason: 'group_full' };
        // They see history from their own "added" message on.
        await addMembers(sql, threadId, fresh, 'member', thread.lastSeq, now);
        return { kind: 'changed', message: await system({ ...change.event, user_ids: fresh }, current.size + fresh.length), added: fresh };
      }
      case 'end': {
        if (change.newOwner !== null) await setRoles(sql, threadId, [{ userId: change.newOwner, role: 'owner' }]);
        const message = await system(change.event);
        await sql.query('UPDATE thread_members SET left_seq = $1 WHERE thread_id = $2 AND user_id = $3 AND left_seq IS NULL', [message.seq, threadId, change.userId]);
        return { kind: 'changed', message, added: [] };
      }
      case 'rename':
        await sql.query('UPDATE threads SET title = $1 WHERE id = $2', [change.title, threadId]);
        return { kind: 'changed', message: await system(change.event), added: [] };
      case 'roles':
        await setRoles(sql, threadId, change.roles);
        return { kind: 'changed', message: await system(change.event), added: [] };
      case 'require_e2e':
        if (thread.e2eRequired) return { kind: 'changed', message: null, added: [] };
        await sql.query('UPDATE threads SET e2e_required = true WHERE id = $1', [threadId]);
        return { kind: 'changed', message: await system(change.event), added: [] };
    }
  }

  updateSettings(input: { threadId: number; userId: number; muted: boolean | undefined; label: string | null | undefined }): Promise<boolean> {
    return this.db.writes.submit(async (sql) => {
      // undefined leaves a setting as it is: coalesce on a flag saying whether it was given.
      const { rowCount } = await sql.query(
        `UPDATE thread_members SET muted = coalesce($3, muted), label = CASE WHEN $4 THEN $5 ELSE label END
          WHERE thread_id = $1 AND user_id = $2`,
        [input.threadId, input.userId, input.muted ?? null, input.label !== undefined, input.label ?? null],
      );
      return rowCount > 0;
    });
  }
}

/** Whether the roles the change was decided on still hold (`members`: the current ones, read under the thread's lock). */
function holds(members: readonly MemberRow[], actorId: number, expect: Expectation): boolean {
  const roles = new Map(members.map((m) => [m.user_id, m.role]));
  if (roles.get(actorId) !== expect.actorRole) return false;
  return (expect.members ?? []).every((m) => roles.get(m.userId) === m.role);
}

/** Adds members, or brings back ones who left; they see history after joinedSeq. */
async function addMembers(sql: Sql, threadId: number, userIds: readonly number[], role: MemberRole, joinedSeq: number, now: number): Promise<void> {
  if (userIds.length === 0) return;
  await sql.query(
    `INSERT INTO thread_members (thread_id, user_id, role, joined_seq, read_seq, delivered_seq, joined_at)
     SELECT $1, u, $3, $4, $4, 0, $5 FROM unnest($2::bigint[]) AS u
     ON CONFLICT (thread_id, user_id) DO UPDATE SET role = excluded.role, joined_seq = excluded.joined_seq,
       read_seq = excluded.read_seq, delivered_seq = excluded.joined_seq, left_seq = NULL, joined_at = excluded.joined_at`,
    [threadId, [...new Set(userIds)], role, joinedSeq, now],
  );
}

async function setRoles(sql: Sql, threadId: number, roles: ReadonlyArray<{ readonly userId: number; readonly role: MemberRole }>): Promise<void> {
  await sql.query(
    `UPDATE thread_members m SET role = r.role FROM unnest($2::bigint[], $3::text[]) AS r(user_id, role)
      WHERE m.thread_id = $1 AND m.user_id = r.user_id`,
    [threadId, roles.map((r) => r.userId), roles.map((r) => r.role)],
  );
}

