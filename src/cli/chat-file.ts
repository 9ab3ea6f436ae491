import { writeFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { ChatClient, ClientAttachment, UploadedAttachment } from '../client/node.js';
import { humanSize } from './chat-render.js';

/**
 * `/file` and `/save` of `chatd chat`: a file uploaded from its path (read a
 * chunk at a time; encrypted first in an encrypted thread) with a progress
 * line per quarter, and an attachment saved to a path (decrypted and checked
 * when encrypted).
 */
export async function uploadFile(client: ChatClient, path: string, encrypt: boolean, print: (line: string) => void): Promise<UploadedAttachment> {
  const name = basename(path);
  let shownQuarter = -1;
  const type = typeByExtension(path);
  const attachment = await client.upload({ path }, {
    name,
    encrypt,
    // The server sniffs a plaintext file's type and makes its thumbnail itself; of an encrypted one it knows nothing.
    ...(encrypt ? { type, ...(type.startsWith('image/') ? await imageFacts(path) : {}) } : {}),
    onProgress: (sent, total) => {
      const quarter = total === 0 ? 4 : Math.floor((sent / total) * 4);
      if (quarter === shownQuarter) return;
      shownQuarter = quarter;
      print(`uploading ${name}: ${quarter * 25}% (${humanSize(sent)} of ${humanSize(total)})`);
    },
  });
  print(`uploaded ${name}${encrypt ? ' (encrypted)' : ''}`);
  return attachment;
}

export async function saveAttachment(client: ChatClient, attachment: ClientAttachment, path: string): Promise<number> {
  const bytes = await client.download(attachment);
  await writeFile(path, bytes, { flag: 'wx' }); // never over an existing file
  return bytes.length;
}

const TYPES: Readonly<Record<string, string>> = {
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.gif': 'image/gif', '.webp': 'image/webp', '.heic': 'image/heic',
  '.mp4': 'video/mp4', '.mov': 'video/quicktime', '.webm': 'video/webm', '.mp3': 'audio/mpeg', '.m4a': 'audio/mp4', '.ogg': 'audio/ogg',
  '.opus': 'audio/ogg', '.wav': 'audio/wav', '.pdf': 'application/pdf', '.txt': 'text/plain', '.zip': 'application/zip',
};

function typeByExtension(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream';
}

/** An image's size and a small JPEG preview for the envelope (sharp, loaded only here); nothing when sharp cannot read it. */
async function imageFacts(path: string): Promise<{ width?: number; height?: number; thumbnail?: { bytes: Uint8Array; width: number; height: number; mime: string } }> {
  try {
    const { default: sharp } = await import('sharp');
    const image = sharp(path, { limitInputPixels: 50_000_000 }).rotate();
    const meta = await image.metadata();
    const { data, info } = await image.resize(320, 320, { fit: 'inside', withoutEnlargement: true }).jpeg({ quality: 70 }).toBuffer({ resolveWithObject: true });
    // EXIF orientation 5 to 8 turns the picture a quarter: its displayed width is the stored height.
    const turned = (meta.orientation ?? 1) >= 5;
    return {
      ...(meta.width && meta.height ? { width: turned ? meta.height : meta.width, height: turned ? meta.width : meta.height } : {}),
      thumbnail: { bytes: new Uint8Array(data), width: info.width, height: info.height, mime: 'image/jpeg' },
    };
  } catch {
    return {};
  }
}
