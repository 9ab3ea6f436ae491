import type { Command } from 'commander';
import { renderExampleConfig } from '../config/example.js';
import { loadConfig } from '../config/load.js';
import { examples } from './common.js';

export function addConfigCommands(program: Command): void {
  const config = program.command('config').description('check or print configuration');

  examples(
    config
      .command('check')
      .description('validate a config file exactly as `serve` would, without starting (exit 2 if invalid)')
      .argument('<file>', 'the TOML file')
      .action((file: string) => {
        loadConfig({ file });
        console.log(`${file}: ok`);
      }),
    ['chatd config check /etc/chatd/config.toml'],
  );

  examples(
    config
      .command('example')
      .description('print a config file with every key, its default and what it accepts')
      .action(() => {
        process.stdout.write(renderExampleConfig());
      }),
    ['chatd config example > config.toml'],
  );
}
