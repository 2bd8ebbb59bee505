/**
 * Regenerates the configuration reference in docs/configuration.md from the zod schemas.
 *   npm run docs:config          (a test fails while the committed copy is stale)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tapwireConfigSchema } from '../services/cli/src/cli-config.js';
import { renderConfigReference, withConfigReference } from '../services/cli/src/config-reference.js';

const doc = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
writeFileSync(
  doc,
  withConfigReference(readFileSync(doc, 'utf8'), renderConfigReference(tapwireConfigSchema)),
);
process.stdout.write('docs/configuration.md configuration reference regenerated\n');
