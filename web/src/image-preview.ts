import type { ImageFacts } from './attachment-sdk.js';

/** Longest side of the preview made for an encrypted image (the server's thumbnails of plaintext ones: 320 too). */
const PREVIEW_PIXELS = 320;

/**
 * An image's size and a small JPEG preview, made in the browser: for an
 * encrypted upload only the sender can say them (the server sees ciphertext),
 * and the receiver then keeps the image's space before it arrives and shows
 * the small preview first. Undefined when the browser cannot read the image.
 */
export async function imageFacts(file: Blob): Promise<ImageFacts | undefined> {
  if (!file.type.startsWith('image/') || file.type.includes('svg') || typeof createImageBitmap !== 'function') return undefined;
  let bitmap: ImageBitmap;
  try {
    // The photo's orientation (EXIF) applied: width and height as it is seen.
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return undefined;
  }
  try {
    const { width, height } = bitmap;
    const scale = Math.min(1, PREVIEW_PIXELS / Math.max(width, height));
    const canvas = document.createElement('canvas');
    canvas.width = Math.max(1, Math.round(width * scale));
    canvas.height = Math.max(1, Math.round(height * scale));
    const context = canvas.getContext('2d');
    if (!context) return { width, height };
    context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    const bytes = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, 'image/jpeg', 0.8));
    return bytes ? { width, height, thumbnail: { bytes, width: canvas.width, height: canvas.height, mime: 'image/jpeg' } } : { width, height };
  } finally {
    bitmap.close();
  }
}
