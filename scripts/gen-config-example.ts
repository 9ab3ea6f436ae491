// Writes config.example.toml from the schema. A unit test fails when the two differ.
import { writeFileSync } from 'node:fs';
import { renderExampleConfig } from '../src/config/example.js';

writeFileSync(new URL('../config.example.toml', import.meta.url), renderExampleConfig());
console.log('wrote config.example.toml');
