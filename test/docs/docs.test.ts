import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The docs a newcomer reads: a README short enough to read, pointing at every page of docs/, and
// no link that leads out of the repository or to a heading that does not exist.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f && existsSync(join(ROOT, f)));
const markdown = tracked.filter((f) => f.endsWith('.md'));

/** slug is GitHub's anchor for a heading. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[`*_]/g, '')
    .replace(/[^\p{L}\p{N}\s-]/gu, '')
    .replace(/\s/g, '-');
}

function anchors(file: string): Set<string> {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => slug(m[1] ?? '')));
}

/** links lists the relative links of a markdown file: [text](target) outside code blocks. */
function links(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((t) => !/^[a-z]+:/i.test(t));
}

describe('the docs', () => {
  it('README is at most 200 lines and links every page of docs/', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
    const linked = new Set(links('README.md').map((l) => l.split('#')[0]));
    const pages = readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md'));
    expect(pages.filter((p) => !linked.has(`docs/${p}`))).toEqual([]);
  });

  it('every relative link resolves to a file in the repository, and every anchor to a heading', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      for (const link of links(file)) {
        const [path = '', anchor] = link.split('#');
        const target = path ? resolve(ROOT, dirname(file), path) : join(ROOT, file);
        const inside = !relative(ROOT, target).startsWith('..');
        if (!inside || !existsSync(target)) broken.push(`${file}: ${link}`);
        else if (anchor && target.endsWith('.md') && !anchors(relative(ROOT, target)).has(anchor))
          broken.push(`${file}: ${link} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('no tracked source or doc points at files outside the repository', () => {
    const outside = tracked
      .filter((f) => /\.(ts|md|ya?ml|json|sh|py)$/.test(f) && !f.startsWith('test/docs/'))
      .filter((f) => /\.\.\/shared\/|shared\/reference\//.test(readFileSync(join(ROOT, f), 'utf8')));
    expect(outside).toEqual([]);
  });
});
