import { request } from 'node:http';
import { type Exchange, startRecorder } from './recorder.js';

/**
 * The ClickHouse dialect check: replays, in order, every statement a workload sent to 18.16
 * (recorded by recorder.ts) on another ClickHouse (26.9 through the chdb shim), with the same
 * URL parameters, settings and bodies (so inserts seed the same rows and materialized views
 * build the same rollups), and compares each answer with 18.16's.
 *
 * - A SELECT's rows must match: numbers within a relative 1e-9 (float formatting differs; a
 *   64-bit integer 18.16 quotes as a string equals the same number unquoted), column names
 *   exactly, rows in order when the statement's outer query has an ORDER BY (rows tied on its
 *   keys may come in any order) and as multisets otherwise.
 * - A statement about server state (system.* tables, version()) must run without error; its
 *   answer is not compared.
 * - Any other statement (DDL, ALTER, INSERT) must succeed where it succeeded on 18.16, and
 *   fail where it failed.
 */

/** Verdict is the outcome of one statement on the other server. */
export type Verdict = 'ok' | 'diff' | 'error';

/** StatementKind says how a statement is judged. */
export type StatementKind = 'select' | 'server-state' | 'insert' | 'command';

/** StatementResult is one replayed statement with both answers. */
export interface StatementResult {
  readonly seq: number;
  readonly kind: StatementKind;
  readonly database: string;
  /** text is the statement as sent, without an INSERT's rows. */
  readonly text: string;
  readonly shape: string;
  readonly verdict: Verdict;
  readonly detail: string;
  readonly reference: { status: number; answer: string };
  readonly other: { status: number; answer: string };
}

/** ShapeReport counts the statements of one normalized shape and their verdicts. */
export interface ShapeReport {
  readonly shape: string;
  readonly kind: StatementKind;
  readonly count: number;
  readonly ok: number;
  readonly diff: number;
  readonly error: number;
  /** databases are the databases (random suffixes as `*`) that sent this shape: which workload part it came from. */
  readonly databases: readonly string[];
  /** example is the first statement of this shape, in full (rows of an INSERT left out). */
  readonly example: string;
  /** notes count how ok statements of this shape still differed harmlessly (quoting, float digits, order among ties, failed on both). */
  readonly notes: Readonly<Record<string, number>>;
  /** failures are the statements of this shape that differed or failed, with both answers. */
  readonly failures: readonly {
    seq: number;
    verdict: Verdict;
    detail: string;
    text: string;
    reference: { status: number; answer: string };
    other: { status: number; answer: string };
  }[];
}

/** DialectReport is what the check writes to .tapwire/dialect-report.json. */
export interface DialectReport {
  readonly reference: string;
  readonly other: string;
  readonly statements: number;
  readonly shapes: readonly ShapeReport[];
  readonly totals: Record<Verdict, number> & Record<StatementKind, number>;
  /** byDatabase counts statements per database (random suffixes as `*`). */
  readonly byDatabase: Readonly<Record<string, number>>;
  /** live is the workload run on the other server itself (runDialectCheck's `live` option). */
  readonly live?: LiveReport;
  readonly ok: boolean;
}

/** LiveReport is the workload run directly on the other server: errors only, and the shapes the reference never saw. */
export interface LiveReport {
  readonly statements: number;
  readonly errors: number;
  /** thrown is what the workload itself threw on the other server; empty when it completed. */
  readonly thrown: string;
  /** onlyLive lists the shapes sent only here: SQL a code path built from this server's answers. */
  readonly onlyLive: readonly { shape: string; kind: StatementKind; count: number; error: number }[];
  readonly failures: readonly { shape: string; text: string; status: number; answer: string }[];
}

const INSERT_WITH_ROWS = /^\s*INSERT\s+INTO\s+[\s\S]*?\bFORMAT\s+\w+\s*$/i;
const READ = /^\s*(\(\s*)*(SELECT|WITH|SHOW|DESCRIBE|DESC|EXISTS)\b/i;
const SERVER_STATE = /\bsystem\s*\.\s*`?\w|\bversion\s*\(\s*\)|\buptime\s*\(\s*\)/i;
const TRAILING_FORMAT = /\bFORMAT\s+(\w+)\s*;?\s*$/i;

/** statementOf reads what an exchange asked: its statement text, the rows it carried and its database. */
export function statementOf(e: Exchange): { text: string; rows: string; database: string } {
  const params = new Map(e.params);
  const urlQuery = params.get('query') ?? '';
  const database = params.get('database') ?? 'default';
  if (urlQuery && INSERT_WITH_ROWS.test(urlQuery)) return { text: urlQuery.trim(), rows: e.body, database };
  const text = urlQuery && e.body ? `${urlQuery}\n${e.body}` : urlQuery || e.body;
  return { text: text.trim(), rows: '', database };
}

/** kindOf classifies a statement for judging. */
export function kindOf(text: string, rows: string): StatementKind {
  if (rows || /^\s*INSERT\b/i.test(text)) return rows ? 'insert' : 'command';
  if (!READ.test(text)) return 'command';
  return SERVER_STATE.test(text) ? 'server-state' : 'select';
}

/**
 * normalizeStatement is a statement's shape: literals become `?`, lists of them `?, …`, the
 * random parts of generated names `*`, whitespace one space, and a trailing FORMAT is kept.
 */
export function normalizeStatement(text: string): string {
  return text
    .replace(/--[^\n]*/g, ' ')
    .replace(/'(?:[^'\\]|\\.)*'/g, '?')
    .replace(/\b([a-z_]+)_[0-9a-f]{10,12}(?![0-9a-z])/g, '$1_*')
    .replace(/(?<![\w.`])-?\d+(\.\d+)?(e[+-]?\d+)?(?![\w`])/gi, '?')
    .replace(/\s+/g, ' ')
    .replace(/\(\s*\?(\s*,\s*\?)+\s*\)/g, '(?, …)')
    .replace(/\[\s*\?(\s*,\s*\?)+\s*\]/g, '[?, …]')
    .trim();
}

/** send replays one exchange on `url` and resolves the status and answer. */
function send(url: URL, e: Exchange): Promise<{ status: number; answer: string }> {
  const search = new URLSearchParams(e.params as [string, string][]).toString();
  const body = Buffer.from(e.body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: url.hostname,
        port: url.port,
        method: e.method,
        path: `${e.path}${search ? `?${search}` : ''}`,
        headers: {
          'content-length': String(body.length),
          ...(e.contentType ? { 'content-type': e.contentType } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, answer: Buffer.concat(chunks).toString('utf8') }),
        );
        res.on('error', reject);
      },
    );
    req.once('error', reject);
    req.end(body);
  });
}

/** outerOrderBy returns the ORDER BY keys of the outermost query (none when it has no ORDER BY). */
export function outerOrderBy(text: string): string[] | undefined {
  // Blank out quoted text and anything inside parentheses, keeping offsets.
  let depth = 0;
  let quote = '';
  let flat = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') {
        flat += '  ';
        i++;
        continue;
      }
      if (c === quote) quote = '';
      flat += ' ';
    } else if (c === "'" || c === '`' || c === '"') {
      quote = c;
      flat += depth === 0 ? c : ' ';
    } else if (c === '(') {
      depth++;
      flat += '(';
    } else if (c === ')') {
      depth--;
      flat += ')';
    } else flat += depth === 0 ? c : ' ';
  }
  const at = [...flat.matchAll(/\bORDER\s+BY\b/gi)].pop();
  if (!at || at.index === undefined) return undefined;
  const from = at.index + at[0].length;
  const end = flat.slice(from).search(/\b(LIMIT|SETTINGS|FORMAT|UNION|WITH\s+TOTALS)\b/i);
  const clause = text.slice(from, end === -1 ? undefined : from + end);
  const keys: string[] = [];
  let part = '';
  depth = 0;
  for (const c of clause) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      keys.push(part);
      part = '';
    } else part += c;
  }
  keys.push(part);
  return keys.map((k) =>
    k
      .trim()
      .replace(/\s+(ASC|DESC)(\s+NULLS\s+(FIRST|LAST))?$/i, '')
      .replace(/^`(.*)`$/, '$1')
      .trim(),
  );
}

type Row = Record<string, unknown>;

/** parseAnswer reads a JSONEachRow answer into rows; undefined when the answer is not JSONEachRow. */
function parseAnswer(answer: string): Row[] | undefined {
  const lines = answer.split('\n').filter((l) => l.trim() !== '');
  try {
    const rows = lines.map((l) => JSON.parse(l) as unknown);
    return rows.every((r) => r !== null && typeof r === 'object' && !Array.isArray(r))
      ? (rows as Row[])
      : undefined;
  } catch {
    return undefined;
  }
}

const INTEGER = /^-?\d+$/;

/** sameValue compares two JSON values: numbers within a relative 1e-9, quoted 64-bit integers as numbers. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (typeof a === 'string' && typeof b === 'number' && INTEGER.test(a)) return sameValue(Number(a), b);
  if (typeof b === 'string' && typeof a === 'number' && INTEGER.test(b)) return sameValue(a, Number(b));
  if (typeof a === 'number' && typeof b === 'number') {
    if (a === b) return true;
    return Math.abs(a - b) <= 1e-9 * Math.max(Math.abs(a), Math.abs(b), 1e-300);
  }
  if (Array.isArray(a) && Array.isArray(b))
    return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return (
      ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameValue((a as Row)[k], (b as Row)[k]))
    );
  }
  return a === b;
}

// A canonical text for sorting rows into the same order before comparing them as multisets:
// numbers rounded to 9 significant digits, quoted integers unquoted.
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => {
    if (typeof x === 'string' && INTEGER.test(x)) return Number(x);
    if (typeof x === 'number' && Number.isFinite(x) && !Number.isInteger(x)) return Number(x.toPrecision(9));
    return x;
  });
}

function sortedRows(rows: readonly Row[]): Row[] {
  return rows
    .map((r) => [canonical(r), r] as const)
    .sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
    .map(([, r]) => r);
}

function firstDifference(a: readonly Row[], b: readonly Row[]): string {
  if (a.length !== b.length) return `${a.length} rows on the reference, ${b.length} on the other`;
  const i = a.findIndex((r, j) => !sameValue(r, b[j]));
  return `row ${i}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])}`;
}

/** leafNotes names the harmless ways two equal answers differ: 64-bit integers quoted on one side, float digits. */
function leafNotes(a: unknown, b: unknown, notes: Set<string>): void {
  if (
    (typeof a === 'string') !== (typeof b === 'string') &&
    (typeof a === 'number' || typeof b === 'number')
  ) {
    notes.add(
      typeof a === 'string'
        ? '64-bit integers quoted on the reference only'
        : '64-bit integers quoted on the other only',
    );
  } else if (typeof a === 'number' && typeof b === 'number' && a !== b) {
    notes.add('numbers equal within a relative 1e-9');
  } else if (Array.isArray(a) && Array.isArray(b)) {
    for (const [i, x] of a.entries()) leafNotes(x, b[i], notes);
  } else if (a && b && typeof a === 'object' && typeof b === 'object') {
    for (const k of Object.keys(a)) leafNotes((a as Row)[k], (b as Row)[k], notes);
  }
}

/** compareRows judges two SELECT answers; `order` holds the outer ORDER BY keys, if any. */
export function compareRows(
  reference: readonly Row[],
  other: readonly Row[],
  order: readonly string[] | undefined,
): { verdict: Verdict; detail: string } {
  const columns = (rows: readonly Row[]) => Object.keys(rows[0] ?? {}).join(', ');
  if (reference.length > 0 && other.length > 0 && columns(reference) !== columns(other)) {
    return { verdict: 'diff', detail: `columns (${columns(reference)}) vs (${columns(other)})` };
  }
  const notes = new Set<string>();
  if (reference.length === other.length && reference.every((r, i) => sameValue(r, other[i]))) {
    leafNotes(reference, other, notes);
    return { verdict: 'ok', detail: [...notes].join('; ') };
  }
  const a = sortedRows(reference);
  const b = sortedRows(other);
  const sameSet = a.length === b.length && a.every((r, i) => sameValue(r, b[i]));
  if (!sameSet) return { verdict: 'diff', detail: firstDifference(a, b) };
  leafNotes(a, b, notes);
  const also = [...notes].map((n) => `; ${n}`).join('');
  if (!order) return { verdict: 'ok', detail: `same rows in another order (no ORDER BY)${also}` };
  // Ordered: the sequence of sort keys must match, so only rows tied on every key may swap.
  const keyed = order.every((k) => reference.every((r) => k in r));
  if (!keyed) return { verdict: 'diff', detail: `same rows in another order; ORDER BY ${order.join(', ')}` };
  const keysOf = (rows: readonly Row[]) => rows.map((r) => order.map((k) => r[k]));
  return sameValue(keysOf(reference), keysOf(other))
    ? { verdict: 'ok', detail: `rows tied on ORDER BY ${order.join(', ')} came in another order${also}` }
    : { verdict: 'diff', detail: `same rows in another order; ORDER BY ${order.join(', ')}` };
}

function judge(
  kind: StatementKind,
  text: string,
  reference: { status: number; answer: string },
  other: { status: number; answer: string },
): { verdict: Verdict; detail: string } {
  const refOk = reference.status === 200;
  const otherOk = other.status === 200;
  if (!refOk && !otherOk) return { verdict: 'ok', detail: 'failed on both' };
  if (!refOk) return { verdict: 'diff', detail: `failed on the reference only: ${reference.answer.trim()}` };
  if (!otherOk) return { verdict: 'error', detail: other.answer.trim() };
  if (kind !== 'select') return { verdict: 'ok', detail: '' };
  const format = TRAILING_FORMAT.exec(text)?.[1];
  const a = format === 'JSONEachRow' ? parseAnswer(reference.answer) : undefined;
  const b = format === 'JSONEachRow' ? parseAnswer(other.answer) : undefined;
  if (a && b) return compareRows(a, b, outerOrderBy(text));
  return reference.answer === other.answer
    ? { verdict: 'ok', detail: '' }
    : { verdict: 'diff', detail: `answers differ (format ${format ?? 'TabSeparated'})` };
}

/** replayOn sends every recorded statement, in order, to the ClickHouse at `url` and judges each answer. */
export async function replayOn(url: string, exchanges: readonly Exchange[]): Promise<StatementResult[]> {
  const target = new URL(url);
  const results: StatementResult[] = [];
  for (const e of exchanges) {
    if (e.path !== '/') continue;
    const { text, rows, database } = statementOf(e);
    if (!text) continue;
    const kind = kindOf(text, rows);
    const other = await send(target, e);
    const reference = { status: e.status, answer: e.response };
    const { verdict, detail } = judge(kind, text, reference, other);
    results.push({
      seq: e.seq,
      kind,
      database,
      text,
      shape: normalizeStatement(text),
      verdict,
      detail,
      reference,
      other,
    });
  }
  return results;
}

const clip = (s: string, n = 2000) => (s.length > n ? `${s.slice(0, n)}… (${s.length} chars)` : s);

/** buildReport groups statement results by shape, in order of first appearance. */
export function buildReport(
  reference: string,
  other: string,
  results: readonly StatementResult[],
): DialectReport {
  const shapes = new Map<string, ShapeReport & { failures: ShapeReport['failures'][number][] }>();
  const totals = { ok: 0, diff: 0, error: 0, select: 0, 'server-state': 0, insert: 0, command: 0 };
  const byDatabase: Record<string, number> = {};
  for (const r of results) {
    totals[r.verdict]++;
    totals[r.kind]++;
    let s = shapes.get(r.shape);
    if (!s) {
      s = {
        shape: r.shape,
        kind: r.kind,
        count: 0,
        ok: 0,
        diff: 0,
        error: 0,
        databases: [],
        example: clip(r.text),
        notes: {},
        failures: [],
      };
      shapes.set(r.shape, s);
    }
    const database = normalizeStatement(r.database);
    byDatabase[database] = (byDatabase[database] ?? 0) + 1;
    if (!s.databases.includes(database)) (s.databases as string[]).push(database);
    const counts = s as { count: number; ok: number; diff: number; error: number };
    counts.count++;
    counts[r.verdict]++;
    if (r.verdict === 'ok' && r.detail) {
      const notes = s.notes as Record<string, number>;
      for (const n of r.detail.split('; ')) notes[n] = (notes[n] ?? 0) + 1;
    }
    if (r.verdict !== 'ok') {
      s.failures.push({
        seq: r.seq,
        verdict: r.verdict,
        detail: clip(r.detail),
        text: clip(r.text, 4000),
        reference: { status: r.reference.status, answer: clip(r.reference.answer) },
        other: { status: r.other.status, answer: clip(r.other.answer) },
      });
    }
  }
  return {
    reference,
    other,
    statements: results.length,
    shapes: [...shapes.values()],
    totals,
    byDatabase,
    ok: totals.diff === 0 && totals.error === 0,
  };
}

/** summarize renders a report for stdout: totals, notes, and each failing shape with its first failures. */
export function summarize(report: DialectReport): string {
  const lines = [
    `ClickHouse dialect check: ${report.statements} statements in ${report.shapes.length} shapes, ${report.reference} vs ${report.other}`,
    `  ${report.totals.ok} ok, ${report.totals.diff} diff, ${report.totals.error} error; ${report.totals.select} selects compared, ${report.totals['server-state']} server-state (errors only), ${report.totals.insert} inserts, ${report.totals.command} commands`,
  ];
  lines.push(
    `  by database: ${Object.entries(report.byDatabase)
      .map(([d, n]) => `${d} ${n}`)
      .join(', ')}`,
  );
  const notes = new Map<string, number>();
  for (const s of report.shapes)
    for (const [n, c] of Object.entries(s.notes)) notes.set(n, (notes.get(n) ?? 0) + c);
  for (const [n, c] of notes) lines.push(`  note: ${c} ok statements: ${n}`);
  const failing = report.shapes.filter((s) => s.diff + s.error > 0);
  lines.push(
    `  ${report.shapes.length - failing.length} shapes ok${failing.length > 0 ? `, ${failing.length} failing:` : ''} (every shape with its counts: the JSON report)`,
  );
  for (const s of failing) {
    const verdict = s.error > 0 ? 'ERROR' : 'DIFF';
    lines.push(
      `  ${verdict.padEnd(5)} ${String(s.count).padStart(4)}× ${s.kind.padEnd(12)} ${clip(s.shape, 160)}`,
    );
    for (const f of s.failures.slice(0, 3))
      lines.push(`          #${f.seq} ${f.verdict}: ${clip(f.detail, 600)}`);
  }
  if (report.live) {
    const l = report.live;
    lines.push(
      `live on ${report.other}: the workload ran there itself, ${l.statements} statements, ${l.errors} errors${l.thrown ? `, threw: ${clip(l.thrown, 600)}` : ''}; ${l.onlyLive.length} shapes only there${l.onlyLive.length > 0 ? ':' : ''}`,
    );
    for (const s of l.onlyLive)
      lines.push(
        `  ${s.error > 0 ? 'ERROR' : 'ok'.padEnd(5)} ${String(s.count).padStart(4)}× ${s.kind.padEnd(12)} ${clip(s.shape, 160)}`,
      );
    for (const f of l.failures.slice(0, 10)) lines.push(`          ${f.status}: ${clip(f.answer, 600)}`);
  }
  return lines.join('\n');
}

/** runRecorded runs `workload` against `url` through a recorder and returns what it sent, and what it threw. */
async function runRecorded(
  url: string,
  workload: (url: string) => Promise<void>,
): Promise<{ exchanges: Exchange[]; thrown: unknown }> {
  const recorder = await startRecorder(url);
  let thrown: unknown;
  try {
    await workload(recorder.url);
  } catch (err) {
    thrown = err;
  }
  const exchanges = recorder.take();
  await recorder.close();
  return { exchanges, thrown };
}

/**
 * liveReport judges the workload run directly on the other server: every statement must succeed,
 * the workload must not throw, and the shapes the reference never saw (SQL a code path builds from
 * this server's own answers, e.g. the rollup repair's view text from system.tables) are listed.
 */
function liveReport(exchanges: readonly Exchange[], thrown: unknown, seen: ReadonlySet<string>): LiveReport {
  const shapes = new Map<string, { shape: string; kind: StatementKind; count: number; error: number }>();
  const failures: LiveReport['failures'][number][] = [];
  let statements = 0;
  for (const e of exchanges) {
    if (e.path !== '/') continue;
    const { text, rows } = statementOf(e);
    if (!text) continue;
    statements++;
    const shape = normalizeStatement(text);
    let s = shapes.get(shape);
    if (!s) {
      s = { shape, kind: kindOf(text, rows), count: 0, error: 0 };
      shapes.set(shape, s);
    }
    s.count++;
    if (e.status !== 200) {
      s.error++;
      failures.push({ shape, text: clip(text, 4000), status: e.status, answer: clip(e.response) });
    }
  }
  return {
    statements,
    errors: failures.length,
    thrown: thrown === undefined ? '' : String((thrown as Error)?.stack ?? thrown),
    onlyLive: [...shapes.values()].filter((s) => !seen.has(s.shape)),
    failures,
  };
}

/**
 * runDialectCheck runs `workload` against `reference` through a recorder, replays what it sent on
 * `other` and compares the answers; then runs `live`, if given, on `other` itself.
 */
export async function runDialectCheck(options: {
  reference: string;
  other: string;
  workload: (url: string) => Promise<void>;
  /** live, when given, runs on `other` itself: it must throw nothing and every statement must succeed. */
  live?: (url: string) => Promise<void>;
}): Promise<DialectReport> {
  const recorded = await runRecorded(options.reference, options.workload);
  if (recorded.thrown !== undefined) throw recorded.thrown;
  const version = async (url: string) => {
    const e: Exchange = {
      seq: 0,
      method: 'POST',
      path: '/',
      params: [],
      body: 'SELECT version()',
      contentType: '',
      status: 0,
      response: '',
    };
    return (await send(new URL(url), e)).answer.trim();
  };
  const results = await replayOn(options.other, recorded.exchanges);
  const report = buildReport(
    `ClickHouse ${await version(options.reference)}`,
    `ClickHouse ${await version(options.other)}`,
    results,
  );
  if (!options.live) return report;
  const live = await runRecorded(options.other, options.live);
  const seen = new Set(report.shapes.map((s) => s.shape));
  const lr = liveReport(live.exchanges, live.thrown, seen);
  return { ...report, live: lr, ok: report.ok && lr.errors === 0 && lr.thrown === '' };
}
