/**
 * What a message is searched by, in TypeScript: the same rule as SQLite's
 * message_search_text view and PostgreSQL's chatd_search_text() (the snippet
 * is cut from this text, so it must say what the index read).
 */

/** The text of a stored body (JSON): body.text when it is an object with a string `text`, the body when it is a string; else ''. */
export function bodyText(bodyJson: string): string {
  let body: unknown;
  try {
    body = JSON.parse(bodyJson);
  } catch {
    return '';
  }
  if (typeof body === 'string') return body;
  if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
    const text = (body as Record<string, unknown>).text;
    if (typeof text === 'string') return text;
  }
  return '';
}

/** The names of the first 10 attachments (a message carries at most 10), in order. */
export function attachmentNames(attachmentsJson: string | null): string[] {
  if (attachmentsJson === null) return [];
  let list: unknown;
  try {
    list = JSON.parse(attachmentsJson);
  } catch {
    return [];
  }
  if (!Array.isArray(list)) return [];
  return list.slice(0, 10).flatMap((item: unknown) => {
    const name = typeof item === 'object' && item !== null ? (item as Record<string, unknown>).name : undefined;
    return typeof name === 'string' ? [name] : [];
  });
}

/** The searchable text: the body's text and the attachments' names, space-separated, spaces trimmed at both ends. */
export function searchableText(bodyJson: string, attachmentsJson: string | null): string {
  return [bodyText(bodyJson), ...attachmentNames(attachmentsJson)].join(' ').replace(/^ +| +$/g, '');
}
