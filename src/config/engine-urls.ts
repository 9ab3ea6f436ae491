import { redactUrl } from '../redact-url.js';

/**
 * Why `text` is not a URL of one of `schemes` ("postgres:", "redis:" …), in
 * words for an error message, or undefined when it is one. The URL is shown
 * without its password; text that does not parse is not shown at all (it may
 * be a password pasted in the wrong place).
 */
export function urlProblem(text: string, schemes: readonly string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'the value is not a URL (a password holding @, :, / or # must be percent-encoded: %40, %3A, %2F, %23)';
  }
  if (!schemes.includes(url.protocol)) return `${JSON.stringify(redactUrl(text))} has the scheme ${url.protocol.slice(0, -1)}`;
  return undefined;
}
