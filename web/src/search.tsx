import { useEffect, useRef, useState } from 'preact/hooks';
import type { SearchHit } from './message-sdk.js';
import type { ChatModel } from './model.js';
import { highlightRuns } from './snippets.js';

/**
 * The search box above the chat list and its results, which take the list's
 * place while a search is on: each with its chat, sender, date and a
 * snippet with the words found marked. A click opens the chat at that
 * message (loaded in context, highlighted). The SDK's `search` asks the
 * server for plaintext chats and its local index for encrypted ones.
 * Escape or ✕ ends the search.
 */

/** Typing pauses this long (ms) before the search runs (Enter runs it at once). */
const TYPING_PAUSE_MS = 300;

export function SearchBox({ model }: { model: ChatModel }) {
  const [query, setQuery] = useState('');
  const timer = useRef<ReturnType<typeof setTimeout>>();
  useEffect(() => () => clearTimeout(timer.current), []);
  const searching = model.msg.search !== undefined;
  const run = (value: string): void => {
    clearTimeout(timer.current);
    timer.current = undefined;
    void model.msg.runSearch(value);
  };
  const close = (): void => {
    clearTimeout(timer.current);
    timer.current = undefined;
    setQuery('');
    model.msg.closeSearch();
  };
  return (
    <form
      class="search"
      role="search"
      onSubmit={(event) => {
        event.preventDefault();
        run(query);
      }}
    >
      <input
        type="search"
        value={query}
        placeholder="Search messages"
        aria-label="Search messages"
        maxLength={200}
        onInput={(event) => {
          const value = event.currentTarget.value;
          setQuery(value);
          clearTimeout(timer.current);
          if (value.trim() === '') return close();
          timer.current = setTimeout(() => run(value), TYPING_PAUSE_MS);
        }}
        onKeyDown={(event) => {
          if (event.key === 'Escape') {
            event.preventDefault();
            close();
          }
        }}
      />
      {(query || searching) && (
        <button type="button" class="icon" aria-label="Close the search" onClick={close}>
          ✕
        </button>
      )}
    </form>
  );
}

export function SearchResults({ model }: { model: ChatModel }) {
  const search = model.msg.search;
  if (!search) return null;
  return (
    <nav aria-label="Search results" class="search-results" data-testid="search-results">
      {search.error && <p class="error" role="alert">{search.error}</p>}
      {!search.loading && !search.error && search.results.length === 0 && <p class="search-empty">No messages found for “{search.query}”.</p>}
      <ul>
        {search.results.map((hit) => (
          <li key={hit.message.id}>
            <SearchResult model={model} hit={hit} />
          </li>
        ))}
      </ul>
      {search.loading && <p class="search-empty" role="status">Searching…</p>}
      {!search.loading && search.nextCursor && (
        <button type="button" class="link more" onClick={() => void model.msg.moreResults()}>
          More results
        </button>
      )}
    </nav>
  );
}

function SearchResult({ model, hit }: { model: ChatModel; hit: SearchHit }) {
  const { message } = hit;
  const thread = model.threads.find((t) => t.id === message.thread_id);
  const sender = message.sender_id === model.session.user.id ? 'You' : model.nameOf(message.sender_id);
  return (
    <button type="button" class="search-result" data-message={message.id} onClick={() => void model.msg.jumpTo(message.thread_id, message.id)}>
      <span class="result-head">
        <span class="title">{thread ? model.title(thread) : 'A chat'}</span>
        <span class="result-date">{new Date(message.created_at).toLocaleDateString([], { dateStyle: 'medium' })}</span>
      </span>
      <span class="snippet">
        <span class="result-sender">{sender}: </span>
        {highlightRuns(hit.snippet, hit.highlights).map((run, index) => (run.hit ? <mark key={index}>{run.text}</mark> : run.text))}
      </span>
    </button>
  );
}
