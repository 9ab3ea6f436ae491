/**
 * A connection URL as it may be shown: in logs, error messages, `chatd db copy`'s output.
 * The password goes (user info keeps the user name), and so does a `password` query
 * parameter, which PostgreSQL's libpq accepts as well. Text that does not parse as a URL
 * still loses whatever stands between "://" and "@" after a colon, so a typo in a URL
 * never prints the secret it holds.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*):[^@/]*@/i, '$1@').replace(/([?&]password=)[^&]*/gi, '$1***');
  }
  parsed.password = '';
  // URL keeps "?" and "&" as they were written; only the value of each password parameter changes.
  for (const key of [...parsed.searchParams.keys()]) {
    if (key.toLowerCase() === 'password') parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}
