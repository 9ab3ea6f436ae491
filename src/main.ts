import { CommanderError } from 'commander';
import { EXIT_USAGE, reportFailure } from './cli/common.js';
import { buildProgram } from './cli/program.js';

/** Entry point of bin/chatd. */
try {
  await buildProgram().parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Commander has already printed its message (or the help text).
    process.exitCode = error.exitCode === 0 ? 0 : EXIT_USAGE;
  } else {
    process.exitCode = reportFailure(error);
  }
}
