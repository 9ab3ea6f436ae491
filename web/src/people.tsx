import { useEffect, useState } from 'preact/hooks';
import type { UserJson } from '../../src/client/browser.js';
import type { ChatModel } from './model.js';

/** Shortest text searched for (the server's accounts.user_search = "prefix" needs 2). */
const MIN_QUERY = 2;
/** Typing pauses this long before a search goes out. */
const DEBOUNCE_MS = 200;

/**
 * People whose username or display name starts with `query`, as the server
 * allows (accounts.user_search): nothing below two characters, nothing at all
 * once the server said searching is off.
 */
export function useUserSuggestions(model: ChatModel, query: string): UserJson[] {
  const [found, setFound] = useState<UserJson[]>([]);
  const text = query.trim();
  useEffect(() => {
    if (text.length < MIN_QUERY || model.peopleSearchOff) {
      setFound([]);
      return;
    }
    let current = true;
    const timer = setTimeout(() => {
      model.client.searchUsers(text, 8).then(
        (users) => {
          if (current) setFound(users);
        },
        (error: unknown) => {
          // "off": the field is a plain username field from now on; anything else: no suggestions this time.
          if ((error as { code?: string }).code === 'forbidden') model.peopleSearchOff = true;
          if (current) setFound([]);
        },
      );
    }, DEBOUNCE_MS);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [text]);
  return found;
}

/** The people found, as buttons: picking one hands its username to `onPick`. */
export function Suggestions({ users, onPick, label }: { users: readonly UserJson[]; onPick: (user: UserJson) => void; label: string }) {
  if (users.length === 0) return null;
  return (
    <ul class="suggestions" aria-label={label}>
      {users.map((user) => (
        <li key={user.id}>
          <button type="button" class="suggestion" onClick={() => onPick(user)}>
            <span>{user.display_name}</span> <small>@{user.username}</small>
          </button>
        </li>
      ))}
    </ul>
  );
}

/** The word being typed at the end of a space-separated list of usernames. */
export function lastWord(text: string): string {
  return /(\S*)$/.exec(text)?.[1] ?? '';
}

/** The list with its last word replaced by `username`, ready for the next. */
export function withLastWord(text: string, username: string): string {
  return `${text.replace(/\S*$/, '')}${username} `;
}
