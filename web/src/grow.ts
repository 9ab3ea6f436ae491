/**
 * Fits a textarea's height to its text: one line when empty, growing line
 * by line up to the CSS max-height (about eight lines), past which it
 * scrolls. Measured from scrollHeight after collapsing it to one row.
 */
export function growToFit(textarea: HTMLTextAreaElement | null): void {
  if (!textarea) return;
  textarea.style.height = 'auto';
  const style = getComputedStyle(textarea);
  const borders = Number.parseFloat(style.borderTopWidth) + Number.parseFloat(style.borderBottomWidth);
  textarea.style.height = `${textarea.scrollHeight + borders}px`;
}
