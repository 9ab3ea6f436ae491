import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
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
  private indexWriting: Promise<void> | undefined;
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
    return Promise.all([this.writing, this.indexWriting]).then(() => undefined);
  }

  /** The local search index: its own file beside the store (`<path>.search`, mode 0600), so cursor writes do not rewrite it. */
  loadLocalIndex(): Promise<string | undefined> {
    return readFile(`${this.path}.search`, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
  }

  saveLocalIndex(serialised: string | undefined): Promise<void> {
    // One at a time, in call order: the last call wins.
    const previous = this.indexWriting ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(() => (serialised === undefined ? rm(`${this.path}.search`, { force: true }) : writeAtomically(`${this.path}.search`, serialised)));
    const tracked: Promise<void> = next.catch(() => undefined).then(() => {
      if (this.indexWriting === tracked) this.indexWriting = undefined;
    });
    this.indexWriting = tracked;
    return next;
  }

  private async writeWhileDirty(): Promise<void> {
    try {
      await mkdir(dirname(this.path), { recursive: true });
      while (this.dirty) {
        this.dirty = false;
        await writeAtomically(this.path, JSON.stringify(this.document));
      }
    } finally {
      this.writing = undefined;
    }
  }
}

/** Written to a temporary file, flushed, renamed over `path`: a crash leaves the old or the new text. */
async function writeAtomically(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const temporary = `${path}.tmp`;
  const file = await open(temporary, 'w', 0o600);
  try {
    await file.writeFile(text);
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(temporary, path);
  await syncDirectory(dirname(path));
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
