import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { tapwireConfigSchema } from '../src/cli-config.js';
import {
  CONFIG_REFERENCE_END,
  CONFIG_REFERENCE_START,
  renderConfigReference,
} from '../src/config-reference.js';

describe('configuration reference (docs/configuration.md)', () => {
  it('is the one generated from the schemas (run `npm run docs:config` after changing a schema)', () => {
    const doc = readFileSync(
      fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url)),
      'utf8',
    );
    const committed = doc.slice(
      doc.indexOf(CONFIG_REFERENCE_START),
      doc.indexOf(CONFIG_REFERENCE_END) + CONFIG_REFERENCE_END.length,
    );
    expect(committed).toBe(renderConfigReference(tapwireConfigSchema));
  });

  it('lists every key with its environment variable, default and meaning, and list items field by field', () => {
    const text = renderConfigReference(tapwireConfigSchema);
    expect(text).toContain('| `kafka.brokers` | `TAPWIRE_KAFKA_BROKERS` |');
    expect(text).toContain('| `api.cacheTtlMs` | `TAPWIRE_API_CACHE_TTL_MS` | number | `5000` |');
    expect(text).toContain('| `api.tokens[].sha256` | — |');
    expect(text).toContain('| `proxy.upstreams[].name` | — |');
    expect(text).toContain('| `alerter.rulesFile` | `TAPWIRE_ALERTER_RULES_FILE` |');
  });
});
