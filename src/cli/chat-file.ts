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
  const attachment = await client.upload({ path }, {
    name,
    encrypt,
    // The server sniffs a plaintext file's type itself; an encrypted one's type is only what the sender says.
    ...(encrypt ? { type: typeByExtension(path) } : {}),
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
