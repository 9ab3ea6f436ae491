import { ChatError } from '../errors.js';
import type { MemberRole } from './types.js';

/** Who may do what in a group. Pure, so the table is testable on its own. */

const RANK: Record<MemberRole, number> = { member: 0, admin: 1, owner: 2 };

/** Owners and admins add members, rename, and remove those ranked below them. */
export function assertCanManage(role: MemberRole, action: string): void {
  if (RANK[role] < RANK.admin) throw new ChatError('forbidden', `only the group's owner and admins may ${action}`);
}

export function assertCanRemove(actor: MemberRole, target: MemberRole): void {
  assertCanManage(actor, 'remove members');
  if (RANK[target] >= RANK[actor]) throw new ChatError('forbidden', `a group ${actor} cannot remove ${target === 'owner' ? 'the owner' : 'another admin'}`);
}

/** Only the owner changes roles; making someone owner hands the group over (the old owner becomes admin). */
export function assertCanSetRole(actor: MemberRole): void {
  if (actor !== 'owner') throw new ChatError('forbidden', "only the group's owner may change roles");
}

export function checkTitle(title: string): string {
  const trimmed = title.trim();
  if (trimmed.length === 0 || [...trimmed].length > 100) {
    throw new ChatError('invalid_field', 'title must be 1-100 characters (not only spaces)', { field: 'title' });
  }
  return trimmed;
}
