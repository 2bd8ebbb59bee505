import { Writable } from 'node:stream';
import { telemetryConfigSchema } from '@tapwire/config';
import { createLogger, prettyLogs } from '@tapwire/telemetry';
import { describe, expect, it } from 'vitest';

function capture(): { stream: Writable; text: () => string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      cb();
    },
  });
  return { stream, text: () => chunks.join('') };
}

describe('telemetry.logFormat', () => {
  it('auto is the default: human-readable on a terminal, JSON lines anywhere else (pipes, files, CI)', () => {
    expect(telemetryConfigSchema.parse({}).logFormat).toBe('auto');
    expect(prettyLogs('auto', true)).toBe(true);
    expect(prettyLogs('auto', false)).toBe(false);
    expect(prettyLogs('json', true)).toBe(false);
    expect(prettyLogs('pretty', false)).toBe(true);
    expect(telemetryConfigSchema.safeParse({ logFormat: 'text' }).success).toBe(false);
  });

  it('pretty writes one readable line per entry: time, level, name, message, then the fields; secrets stay redacted', () => {
    const out = capture();
    const log = createLogger({
      name: 'tapwire-proxy',
      level: 'info',
      destination: out.stream,
      format: 'pretty',
    });
    log.info({ url: 'http://127.0.0.1:8080', authorization: 'Bearer top' }, 'proxy listening');
    log.debug('hidden');
    const lines = out
      .text()
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(tapwire-proxy\): proxy listening \{"url":"http:\/\/127\.0\.0\.1:8080","authorization":"\[REDACTED\]"\}$/,
    );
  });

  it('a given destination is not a terminal: auto writes JSON to it', () => {
    const out = capture();
    createLogger({ name: 't', level: 'info', destination: out.stream, format: 'auto' }).info('x');
    expect(JSON.parse(out.text())).toMatchObject({ level: 'info', name: 't', msg: 'x' });
  });
});
