import { closestName, editDistance } from '@tapwire/config';
import { describe, expect, it } from 'vitest';

describe('editDistance', () => {
  it('counts insertions, deletions, substitutions and swaps of neighbours, ignoring case', () => {
    expect(editDistance('port', 'port')).toBe(0);
    expect(editDistance('portt', 'port')).toBe(1);
    expect(editDistance('prt', 'port')).toBe(1);
    expect(editDistance('pork', 'port')).toBe(1);
    expect(editDistance('prot', 'port')).toBe(1);
    expect(editDistance('PORT', 'port')).toBe(0);
    expect(editDistance('', 'abc')).toBe(3);
    expect(editDistance('kitten', 'sitting')).toBe(3);
  });
});

describe('closestName', () => {
  const settings = ['TAPWIRE_PROXY_LISTEN_PORT', 'TAPWIRE_PROXY_LISTEN_HOST', 'TAPWIRE_PROXY_ADMIN_PORT'];

  it('suggests the setting a typo most likely meant', () => {
    expect(closestName('TAPWIRE_PROXY_LISTEN_PORTT', settings)).toBe('TAPWIRE_PROXY_LISTEN_PORT');
    expect(closestName('TAPWIRE_PROXY_LSITEN_HOST', settings)).toBe('TAPWIRE_PROXY_LISTEN_HOST');
    expect(closestName('brokerz', ['brokers', 'clientId', 'ssl'])).toBe('brokers');
  });

  it('matches names that differ only in case, "_" or "-", however long the difference', () => {
    expect(closestName('flush_interval_ms', ['flushIntervalMs', 'maxBatchRows'])).toBe('flushIntervalMs');
    expect(closestName('tapwire_proxy_listen_port', settings)).toBe('TAPWIRE_PROXY_LISTEN_PORT');
    expect(closestName('TAPWIRE_PROXY_LISTENPORT', settings)).toBe('TAPWIRE_PROXY_LISTEN_PORT');
  });

  it('suggests nothing when no candidate is a few edits away', () => {
    expect(closestName('TAPWIRE_FOO', settings)).toBeUndefined();
    expect(closestName('colour', ['brokers', 'ssl'])).toBeUndefined();
    // One edit per four characters: "url" cannot become "ssl" (two edits).
    expect(closestName('url', ['ssl'])).toBeUndefined();
    expect(closestName('anything', [])).toBeUndefined();
  });

  it('picks the nearest of several close candidates, the first on a tie', () => {
    expect(closestName('hots', ['port', 'host'])).toBe('host');
    expect(closestName('TAPWIRE_PROXY_ADMIN_PORTS', settings)).toBe('TAPWIRE_PROXY_ADMIN_PORT');
    expect(closestName('pot', ['port', 'pit'])).toBe('port');
    expect(closestName('pot', ['pit', 'port'])).toBe('pit');
  });
});
