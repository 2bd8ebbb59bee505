/** ROUTE_UNMATCHED is the route of requests no upstream matched. */
export const ROUTE_UNMATCHED = 'unmatched';
/** ROUTE_OTHER replaces new route values once a service has reached its route limit. */
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

/** normalizePath maps a raw path to a bounded route: numeric, UUID and long hex/base64 segments become :id. */
export function normalizePath(path: string): string {
  const segments = splitPath(path);
  if (segments.length === 0) return '/';
  const kept = segments
    .slice(0, MAX_SEGMENTS)
    .map((s) => (isIdentifier(s) ? ':id' : s.length > 64 ? ':id' : s));
  return `/${kept.join('/')}${segments.length > MAX_SEGMENTS ? '/*' : ''}`;
}

/** RouteResolver turns a request path into the route value recorded for it. */
export interface RouteResolver {
  resolve(path: string): string;
  /** Distinct normalized routes seen so far (templates excluded). */
  readonly distinct: number;
}

/**
 * createRouteResolver compiles route templates (`/users/:id`, `/files/*`) into a segment trie;
 * literal segments win over parameters. Paths no template covers are normalized, and once
 * `maxRoutes - 1` distinct normalized values were seen, new ones become `__other__`.
 */
export function createRouteResolver(templates: readonly string[], maxRoutes: number): RouteResolver {
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

  const seen = new Set<string>();
  return {
    get distinct() {
      return seen.size;
    },
    resolve(path: string): string {
      const segments = splitPath(path);
      const template = templates.length > 0 ? match(segments, 0, root) : undefined;
      if (template) return template;
      const normalized = normalizePath(path);
      if (seen.has(normalized)) return normalized;
      // __other__ counts towards the limit: a service never shows more than maxRoutes values.
      if (seen.size >= maxRoutes - 1) return ROUTE_OTHER;
      seen.add(normalized);
      return normalized;
    },
  };
}
