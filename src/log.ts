import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** JSON lines on standard output (or the given stream), ISO timestamps. */
export function createLogger(level: LevelWithSilent, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { name: 'chatd' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}

/**
 * The same JSON lines, appended to a file that only its owner may read
 * (mode 0600 when it is created). Written synchronously: the short-lived CLI
 * must not exit with a line still buffered.
 */
export function createFileLogger(level: LevelWithSilent, file: string): Logger {
  const destination = pino.destination({ dest: file, append: true, sync: true, mode: 0o600 });
  return pino({ level, base: { name: 'chatd' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
