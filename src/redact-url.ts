/**
 * A connection URL as it may be shown (logs, errors, /readyz): its password
 * replaced by `***`. Anything that is not a URL is shown as `(invalid URL)`,
 * since it could be a password pasted in the wrong place.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '(invalid URL)';
  }
  if (parsed.password !== '') parsed.password = '***';
  // A password given as a query parameter (libpq's ?password=) goes the same way.
  for (const key of [...parsed.searchParams.keys()]) {
    if (key.toLowerCase() === 'password') parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}
