import { upstreamSchema } from '@tapwire/proxy/config';
import { describe, expect, it } from 'vitest';
import { CommandFailure } from '../src/io.js';
import { DEMO_UPSTREAM, upstreamsForStart } from '../src/start-upstreams.js';

const matchOf = (u: { name: string; url?: string; match: { host?: string; pathPrefix: string } }) => [
  u.name,
  u.url,
  u.match.host ?? '*',
  u.match.pathPrefix,
];

function refusal(run: () => unknown): { message: string; exitCode: number } {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(CommandFailure);
    return { message: (err as CommandFailure).message, exitCode: (err as CommandFailure).exitCode };
  }
  throw new Error('not refused');
}

describe('tapwire start --upstream', () => {
  it('one URL, no config: it takes every request, named after its host and port, routes normalized', () => {
    const [u, ...rest] = upstreamsForStart([], ['http://localhost:3000']);
    expect(rest).toEqual([]);
    expect(matchOf(u!)).toEqual(['localhost-3000', 'http://localhost:3000', '*', '/']);
    expect(u!.routes).toEqual([]);
  });

  it('accepts name=url, host:port and a bare port; the others answer at Host <name>.localhost', () => {
    const all = upstreamsForStart([], ['users=http://127.0.0.1:3001/v1', '127.0.0.1:3002', '3003']);
    expect(all.map(matchOf)).toEqual([
      ['users', 'http://127.0.0.1:3001/v1', '*', '/'],
      ['127.0.0.1-3002', 'http://127.0.0.1:3002', '127.0.0.1-3002.localhost', '/'],
      ['localhost-3003', 'http://localhost:3003', 'localhost-3003.localhost', '/'],
    ]);
  });

  it('refuses what is not an http URL, and a name given twice, with exit code 2', () => {
    expect(refusal(() => upstreamsForStart([], ['ftp://x:21']))).toEqual({
      message: '--upstream ftp://x:21: the URL must be http or https',
      exitCode: 2,
    });
    expect(refusal(() => upstreamsForStart([], ['http://[nope']))).toMatchObject({ exitCode: 2 });
    expect(refusal(() => upstreamsForStart([], ['a=http://h:1', 'a=http://h:2']))).toEqual({
      message: 'upstream name a is used twice; name the --upstream (name=http://host:port)',
      exitCode: 2,
    });
  });
});

describe('tapwire -c file start --demo (the demo beside the configured upstreams)', () => {
  const configured = [upstreamSchema.parse({ name: 'shop', url: 'http://10.0.0.5:8080' })];

  it('keeps the configured upstreams as they are and adds the demo at Host demo-shop.localhost', () => {
    const all = upstreamsForStart(configured, [], { url: 'http://127.0.0.1:4000' });
    expect(all[0]).toBe(configured[0]);
    expect(all.map(matchOf)).toEqual([
      ['shop', 'http://10.0.0.5:8080', '*', '/'],
      [DEMO_UPSTREAM, 'http://127.0.0.1:4000', 'demo-shop.localhost', '/'],
    ]);
    expect(all[1]?.routes).toContain('/api/users/:id');
  });

  it('alone, the demo takes every request (as `npm start` always did)', () => {
    expect(upstreamsForStart([], [], { url: 'http://127.0.0.1:4000' }).map(matchOf)).toEqual([
      [DEMO_UPSTREAM, 'http://127.0.0.1:4000', '*', '/'],
    ]);
  });

  it('a configured upstream on a host or a path prefix leaves the rest to the first one from the command line', () => {
    const narrow = [
      upstreamSchema.parse({ name: 'billing', url: 'http://b:1', match: { pathPrefix: '/billing' } }),
    ];
    expect(upstreamsForStart(narrow, ['http://a:2'], { url: 'http://127.0.0.1:4000' }).map(matchOf)).toEqual([
      ['billing', 'http://b:1', '*', '/billing'],
      ['a-2', 'http://a:2', '*', '/'],
      [DEMO_UPSTREAM, 'http://127.0.0.1:4000', 'demo-shop.localhost', '/'],
    ]);
  });

  it('refuses a configured upstream already named demo-shop instead of replacing it', () => {
    const taken = [upstreamSchema.parse({ name: DEMO_UPSTREAM, url: 'http://10.0.0.5:8080' })];
    expect(refusal(() => upstreamsForStart(taken, [], { url: 'http://127.0.0.1:4000' }))).toEqual({
      message:
        'an upstream is already named demo-shop: the demo needs that name; rename that upstream or start without --demo',
      exitCode: 2,
    });
  });
});
