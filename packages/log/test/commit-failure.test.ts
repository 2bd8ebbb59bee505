import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type FileLog, openFileLog } from '../src/index.js';

const opened: FileLog[] = [];
afterEach(async () => {
  for (const l of opened.splice(0)) await l.close();
});

const openFds = () => readdirSync('/proc/self/fd').length;

describe('group commits on a full disk', () => {
  // Found by the local-log-failure acceptance test: the shipper's position saves fail with ENOSPC
  // while the disk is full, and each failed save left its temp file's descriptor open.
  it('a failed commit (ENOSPC) leaves no descriptor open, and the next commit after the disk is freed is saved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-log-commit-'));
    const log = await openFileLog({ dir, fsync: 'never' });
    opened.push(log);
    const tmp = join(dir, 'groups', `shipper.json.${process.pid}.tmp`);
    // The temp file is /dev/full: opening it succeeds, writing it fails as on a full disk.
    symlinkSync('/dev/full', tmp);
    const before = openFds();
    for (let i = 0; i < 20; i++)
      await expect(log.commit('shipper', new Map([['t', BigInt(i)]]))).rejects.toThrow(
        'ENOSPC: no space left on device, write',
      );
    expect(openFds()).toBe(before);
    // What failed to save is not committed: a shipper that rewinds to committed() resends it.
    expect(log.committed('shipper')).toEqual(new Map());

    rmSync(tmp, { force: true });
    await log.commit('shipper', new Map([['t', 42n]]));
    expect(JSON.parse(readFileSync(join(dir, 'groups', 'shipper.json'), 'utf8'))).toEqual({ t: '42' });
    expect(existsSync(tmp)).toBe(false);
    expect(log.committed('shipper')).toEqual(new Map([['t', 42n]]));
  });

  it('commits of one group are saved in call order, each over what the previous saved', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tapwire-log-commit-'));
    const log = await openFileLog({ dir });
    opened.push(log);
    await Promise.all([
      log.commit('g', new Map([['a', 1n]])),
      log.commit('g', new Map([['b', 2n]])),
      log.commit('g', new Map([['a', 3n]])),
    ]);
    expect(log.committed('g')).toEqual(
      new Map([
        ['a', 3n],
        ['b', 2n],
      ]),
    );
    expect(JSON.parse(readFileSync(join(dir, 'groups', 'g.json'), 'utf8'))).toEqual({ a: '3', b: '2' });
  });
});
