/** Text split into plain runs and web addresses (links.tsx draws them). */

export type TextPart = { readonly kind: 'text'; readonly text: string } | { readonly kind: 'link'; readonly text: string; readonly href: string };

/** Candidates: a scheme followed by anything but white space and a few characters that never end an address in prose. */
const CANDIDATE = /\bhttps?:\/\/[^\s<>"]+/gi;
/** Punctuation that ends a sentence rather than the address ("see https://x.org."). */
const TRAILING = /[.,;:!?'*_~]+$/;

/** Splits text into plain runs and http(s) links; pure, for the tests. */
export function splitLinks(text: string): TextPart[] {
  const parts: TextPart[] = [];
  let at = 0;
  for (const match of text.matchAll(CANDIDATE)) {
    const start = match.index ?? 0;
    const raw = trimAddress(match[0]);
    const href = safeHref(raw);
    if (!href) continue;
    if (start > at) parts.push({ kind: 'text', text: text.slice(at, start) });
    parts.push({ kind: 'link', text: raw, href });
    at = start + raw.length;
  }
  if (at < text.length || parts.length === 0) parts.push({ kind: 'text', text: text.slice(at) });
  return parts;
}

/** Drops sentence punctuation and a closing bracket the address did not open ("(see https://x.org/a)"). */
function trimAddress(raw: string): string {
  let address = raw;
  for (;;) {
    const before = address;
    address = address.replace(TRAILING, '');
    for (const [open, close] of [['(', ')'], ['[', ']'], ['{', '}']] as const) {
      if (address.endsWith(close) && count(address, close) > count(address, open)) address = address.slice(0, -1);
    }
    if (address === before) return address;
  }
}

function count(text: string, character: string): number {
  return text.split(character).length - 1;
}

/** The address as the browser parses it, when it is http(s) with a host; else undefined. */
function safeHref(address: string): string | undefined {
  try {
    const url = new URL(address);
    if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') return undefined;
    return url.href;
  } catch {
    return undefined;
  }
}
