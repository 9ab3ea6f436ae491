import { CommanderError } from 'commander';
import { EXIT_USAGE, reportFailure } from './cli/common.js';
import { buildProgram } from './cli/program.js';

/** Entry point of bin/chatd. */

// `chatd user list | head -1`: the reader went away, which is not a failure of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}

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
