import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DocumentStore, type StoredState, documentToState, emptyDocument, parseStoreDocument } from './store.js';

/**
 * A ClientStore in one JSON file, for Node apps (the terminal client uses it).
 * Every change rewrites the file: written to a temporary file, flushed to disk,
 * then renamed over the old one, so a crash leaves either the old or the new
 * document. Changes made while a write is running are coalesced into the next.
 */
export class FileStore extends DocumentStore {
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(private readonly path: string) {
    super();
  }

  /** Throws `store_corrupt` for a file it cannot trust whole (and leaves the file alone). */
  async load(): Promise<StoredState> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.document = emptyDocument();
      return documentToState(structuredClone(this.document));
    }
    this.document = parseStoreDocument(text, this.path);
    return documentToState(structuredClone(this.document));
  }

  protected persist(): Promise<void> {
    this.dirty = true;
    // The running write loop picks the change up: it checks `dirty` and clears
    // `writing` in one synchronous step, so no change can slip between them.
    this.writing ??= this.writeWhileDirty();
    return this.writing;
  }

  flush(): Promise<void> {
    return this.writing ?? Promise.resolve();
  }

  private async writeWhileDirty(): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
      while (this.dirty) {
        this.dirty = false;
        const temporary = `${this.path}.tmp`;
        const file = await open(temporary, 'w', 0o600);
        try {
          await file.writeFile(JSON.stringify(this.document));
          await file.sync();
        } finally {
          await file.close();
        }
        await rename(temporary, this.path);
        await syncDirectory(dirname(this.path));
      }
    } finally {
      this.writing = undefined;
    }
  }
}

/** The rename is durable only once its directory is. Some systems (Windows) cannot open a directory for that: skipped there. */
async function syncDirectory(path: string): Promise<void> {
  let directory;
  try {
    directory = await open(path, 'r');
  } catch {
    return;
  }
  try {
    await directory.sync();
  } finally {
    await directory.close();
  }
}
