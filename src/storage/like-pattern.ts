/** A LIKE pattern that matches `text` literally, for either engine, with `ESCAPE '\'` in the statement. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
