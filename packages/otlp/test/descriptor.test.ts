import { describe, expect, it } from 'vitest';
import { OTLP_DESCRIPTOR } from '../src/descriptor.js';
import { loadVendoredProtos } from './support/vendored-protos.js';

describe('OTLP_DESCRIPTOR', () => {
  it('is what scripts/generate-descriptor.ts makes of the vendored .proto files', () => {
    expect(OTLP_DESCRIPTOR).toEqual(JSON.parse(JSON.stringify(loadVendoredProtos().toJSON())));
  });
});
