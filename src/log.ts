import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/** JSON lines on standard output (or the given stream), ISO timestamps. */
export function createLogger(level: LevelWithSilent, destination: NodeJS.WritableStream = process.stdout): Logger {
  return pino({ level, base: { name: 'chatd' }, timestamp: pino.stdTimeFunctions.isoTime }, destination);
}
