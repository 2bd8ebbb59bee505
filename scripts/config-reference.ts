/**
 * Regenerates the configuration reference in README.md from the zod schemas.
 *   npm run docs:config          (the README test fails while the committed copy is stale)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tapwireConfigSchema } from '../services/cli/src/cli-config.js';
import { renderConfigReference, withConfigReference } from '../services/cli/src/config-reference.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
writeFileSync(
  readme,
  withConfigReference(readFileSync(readme, 'utf8'), renderConfigReference(tapwireConfigSchema)),
);
process.stdout.write('README.md configuration reference regenerated\n');
