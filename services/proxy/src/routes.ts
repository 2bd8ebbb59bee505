import { performance } from 'node:perf_hooks';

/** ROUTE_UNMATCHED is the route of requests no upstream matched. */
export const ROUTE_UNMATCHED = 'unmatched';
/** ROUTE_OTHER is recorded for normalized routes that hold no slot of their service's route budget. */
export const ROUTE_OTHER = '__other__';

interface Node {
  literal: Map<string, Node>;
  param: Node | undefined;
  template: string | undefined;
  wildcard: string | undefined;
}

const newNode = (): Node => ({
  literal: new Map(),
  param: undefined,
  template: undefined,
  wildcard: undefined,
});

const NUMERIC = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const LONG_HEX = /^[0-9a-f]{16,}$/i;
// Opaque tokens: long runs of base64/base64url characters that mix letters and digits.
const OPAQUE = /^[A-Za-z0-9_=+-]{20,}$/;
const MAX_SEGMENTS = 32;

function isIdentifier(segment: string): boolean {
  if (NUMERIC.test(segment) || UUID.test(segment) || LONG_HEX.test(segment)) return true;
  return OPAQUE.test(segment) && /\d/.test(segment) && /[A-Za-z]/.test(segment);
}

function splitPath(path: string): string[] {
  const out: string[] = [];
  for (const s of path.split('/')) if (s !== '') out.push(s);
  return out;
}

// RFC 3986 §2.3 unreserved characters, by code: ALPHA / DIGIT / "-" / "." / "_" / "~".
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

/**
 * isNormalPath says whether a path is in the form route templates are matched against: no `.` or
 * `..` segment and no percent-encoded unreserved character (RFC 3986 §6.2.2: `%61dmin` and
 * `x/../admin` name `admin` to an upstream that normalizes, but match no `admin` template).
 */
export function isNormalPath(path: string): boolean {
  let pct = path.indexOf('%');
  if (pct === -1 && path.indexOf('/.') === -1) return true;
  for (; pct !== -1; pct = path.indexOf('%', pct + 1)) {
    if (isUnreserved(Number.parseInt(path.slice(pct + 1, pct + 3), 16))) return false;
  }
  for (const s of path.split('/')) if (s === '.' || s === '..') return false;
  return true;
}

/** normalizePath maps a raw path to a bounded route: numeric, UUID and long hex/base64 segments become :id. */
export function normalizePath(path: string): string {
  const segments = splitPath(path);
  if (segments.length === 0) return '/';
  const kept = segments
    .slice(0, MAX_SEGMENTS)
    .map((s) => (isIdentifier(s) ? ':id' : s.length > 64 ? ':id' : s));
  return `/${kept.join('/')}${segments.length > MAX_SEGMENTS ? '/*' : ''}`;
}

/** RouteBudget bounds the route values of one service and says how a normalized route earns a slot. */
export interface RouteBudget {
  /** Most distinct route values at a time: configured templates, normalized routes and `__other__`. */
  readonly maxRoutes: number;
  /** Hits a normalized route needs within `promoteWindowMs` before it gets a slot. */
  readonly promoteHits: number;
  readonly promoteWindowMs: number;
  /** A normalized route unseen for this long gives its slot to the next route that earns one. */
  readonly idleMs: number;
  /**
   * Share of the normalized routes' slots given at first sight, before routes must earn one: a
   * typical API is recorded from its first requests, and a flood can hold at most this share.
   */
  readonly freeShare: number;
  /** Most normalized routes counted while they have not earned a slot yet. */
  readonly maxCandidates: number;
}

/** RouteResolver turns a request path into the route value recorded for it. */
export interface RouteResolver {
  resolve(path: string): string;
  /** Normalized routes holding a slot now (templates excluded). */
  readonly distinct: number;
  /** Normalized routes being counted towards a slot. */
  readonly candidates: number;
}

interface Candidate {
  hits: number;
  sinceMs: number;
}

/**
 * createRouteResolver compiles route templates (`/users/:id`, `/files/*`) into a segment trie;
 * literal segments win over parameters. Paths no template covers are normalized; a normalized
 * route is recorded as itself only once it holds a slot, which it earns by being seen
 * `promoteHits` times within `promoteWindowMs` (or at first sight while fewer than `freeShare` of
 * the slots are in use) and loses after `idleMs` unseen. Until then, or
 * while every slot is in use, it is recorded as `__other__`. `now` is a monotonic clock in ms.
 */
export function createRouteResolver(
  templates: readonly string[],
  budget: RouteBudget,
  now: () => number = () => performance.now(),
): RouteResolver {
  const root = newNode();
  for (const t of templates) {
    let node = root;
    const segments = splitPath(t);
    for (const [i, s] of segments.entries()) {
      if (s === '*' && i === segments.length - 1) {
        node.wildcard = t;
        node = undefined as unknown as Node;
        break;
      }
      if (s.startsWith(':')) {
        node.param ??= newNode();
        node = node.param;
      } else {
        let next = node.literal.get(s);
        if (!next) {
          next = newNode();
          node.literal.set(s, next);
        }
        node = next;
      }
    }
    if (node) node.template ??= t;
  }

  function match(segments: readonly string[], i: number, node: Node): string | undefined {
    if (i === segments.length) return node.template ?? node.wildcard;
    const s = segments[i]!;
    const lit = node.literal.get(s);
    if (lit) {
      const m = match(segments, i + 1, lit);
      if (m) return m;
    }
    if (node.param) {
      const m = match(segments, i + 1, node.param);
      if (m) return m;
    }
    return node.wildcard;
  }

  // Templates and __other__ always keep their values: the rest of the budget is for normalized routes.
  const slotCount = Math.max(0, budget.maxRoutes - 1 - new Set(templates).size);
  const freeSlots = Math.floor(slotCount * budget.freeShare);
  // Both maps are kept in least-recently-seen order (a hit deletes and re-inserts its key), so the
  // first entry is the one to release or evict, found without a scan.
  const slots = new Map<string, number>();
  const candidates = new Map<string, Candidate>();

  function earnsSlot(normalized: string, t: number): boolean {
    let c = candidates.get(normalized);
    if (c !== undefined) candidates.delete(normalized);
    if (c === undefined || t - c.sinceMs > budget.promoteWindowMs) c = { hits: 0, sinceMs: t };
    c.hits++;
    if (slots.size < freeSlots) return true;
    if (c.hits >= budget.promoteHits) {
      if (slots.size < slotCount) return true;
      const [oldest, seenMs] = slots.entries().next().value as [string, number];
      if (t - seenMs >= budget.idleMs) {
        slots.delete(oldest);
        return true;
      }
    }
    // A flood of one-off paths only ever cycles through this bounded table.
    if (candidates.size >= budget.maxCandidates) candidates.delete(candidates.keys().next().value!);
    candidates.set(normalized, c);
    return false;
  }

  return {
    get distinct() {
      return slots.size;
    },
    get candidates() {
      return candidates.size;
    },
    resolve(path: string): string {
      const segments = splitPath(path);
      const template = templates.length > 0 ? match(segments, 0, root) : undefined;
      if (template) return template;
      if (slotCount === 0) return ROUTE_OTHER;
      const normalized = normalizePath(path);
      const t = now();
      if (slots.has(normalized) || earnsSlot(normalized, t)) {
        slots.delete(normalized);
        slots.set(normalized, t);
        return normalized;
      }
      return ROUTE_OTHER;
    },
  };
}
