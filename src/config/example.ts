import { type KeySpec, describeAllowed, envName, sections } from './schema.js';

/** Renders config.example.toml from the schema: every key, its default, what it accepts. */
export function renderExampleConfig(): string {
  const lines = [
    '# chatd configuration. Every key is shown with its default value.',
    '# Use it with `chatd serve --config FILE` (or CHATD_CONFIG=FILE); check it with `chatd config check FILE`.',
    '# Precedence: command-line flags > environment (CHATD_<SECTION>_<KEY>) > this file > defaults.',
    '# Generated from src/config/schema.ts by `npm run gen:config`; do not edit by hand.',
  ];
  for (const section of sections()) {
    lines.push('', `# ${section.doc}`, `[${section.name}]`);
    for (const [key, spec] of section.keys) {
      lines.push('');
      for (const line of wrap(spec.doc, 78)) lines.push(`# ${line}`);
      const how = [`allowed: ${describeAllowed(spec)}`, `env: ${envName(section.name, key)}`];
      if (spec.flag) how.push(`flag: ${spec.flag}`);
      lines.push(`# ${how.join('; ')}`);
      lines.push(`${key} = ${tomlValue(spec)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

function tomlValue(spec: KeySpec): string {
  return typeof spec.default === 'string' ? JSON.stringify(spec.default) : String(spec.default);
}

function wrap(text: string, width: number): string[] {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) out.push(line);
  return out;
}
