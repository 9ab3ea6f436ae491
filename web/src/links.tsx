import { splitLinks } from './link-parts.js';

/**
 * Text with its web addresses made into links. Only http: and https: become
 * links (never javascript:, data: or anything else); the text stays text
 * nodes (Preact never parses it as HTML); links open in a new tab without
 * giving that tab a handle on this one (noopener) or telling it where the
 * click came from (noreferrer).
 */
export function Linkified({ text }: { text: string }) {
  const parts = splitLinks(text);
  if (parts.length === 1 && parts[0]?.kind === 'text') return <>{text}</>;
  return (
    <>
      {parts.map((part, index) =>
        part.kind === 'text' ? (
          part.text
        ) : (
          <a key={index} href={part.href} target="_blank" rel="noopener noreferrer">
            {part.text}
          </a>
        ),
      )}
    </>
  );
}
