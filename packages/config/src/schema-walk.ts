import type { z } from 'zod';

/** LeafKind is how an environment variable's text is coerced for a config leaf. */
export type LeafKind = 'string' | 'number' | 'boolean' | 'list' | 'json';

/** ConfigLeaf describes one settable config key: its path, env var, kind, description and default. */
export interface ConfigLeaf {
  readonly path: readonly string[];
  readonly envVar: string;
  readonly kind: LeafKind;
  readonly description: string | undefined;
  readonly defaultValue: unknown;
  readonly schema: z.ZodType;
}

interface Def {
  type: string;
  innerType?: z.ZodType;
  shape?: Record<string, z.ZodType>;
  catchall?: z.ZodType;
  element?: z.ZodType;
  valueType?: z.ZodType;
  defaultValue?: unknown;
  in?: z.ZodType;
}

function defOf(schema: z.ZodType): Def {
  return (schema as unknown as { def: Def }).def;
}

/** envVarName maps a config path to its environment variable: ['kafka','retentionMs'] → TAPWIRE_KAFKA_RETENTION_MS. */
export function envVarName(prefix: string, path: readonly string[]): string {
  const parts = path.map((p) => p.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase());
  return [prefix, ...parts].join('_');
}

function leafKind(schema: z.ZodType): LeafKind {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (['default', 'prefault', 'optional', 'nullable'].includes(def.type) && def.innerType) {
      s = def.innerType;
    } else if (def.type === 'pipe' && def.in) {
      s = def.in;
    } else {
      switch (def.type) {
        case 'number':
        case 'int':
          return 'number';
        case 'boolean':
          return 'boolean';
        case 'array':
          return 'list';
        case 'string':
        case 'enum':
        case 'literal':
          return 'string';
        default:
          return 'json';
      }
    }
  }
}

/** configLeaves lists every leaf key of an object schema, depth first, in declaration order. */
export function configLeaves(schema: z.ZodType, prefix = 'TAPWIRE', path: string[] = []): ConfigLeaf[] {
  let s = schema;
  let description = (schema as { description?: string }).description;
  let defaultValue: unknown;
  for (;;) {
    const def = defOf(s);
    if (def.type === 'default' && def.innerType) {
      defaultValue ??= def.defaultValue;
      s = def.innerType;
    } else if (
      (def.type === 'optional' || def.type === 'nullable' || def.type === 'prefault') &&
      def.innerType
    ) {
      s = def.innerType;
    } else {
      break;
    }
    description ??= (s as { description?: string }).description;
  }
  const def = defOf(s);
  if (def.type === 'object' && def.shape) {
    return Object.entries(def.shape).flatMap(([key, child]) => configLeaves(child, prefix, [...path, key]));
  }
  return [{ path, envVar: envVarName(prefix, path), kind: leafKind(s), description, defaultValue, schema }];
}

/** unwrap looks through defaults, optionals and pipes to the schema that holds the value's shape. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (;;) {
    const def = defOf(s);
    if (['default', 'prefault', 'optional', 'nullable', 'readonly'].includes(def.type) && def.innerType)
      s = def.innerType;
    else if (def.type === 'pipe' && def.in) s = def.in;
    else if (def.type === 'lazy') s = (def as Def & { getter: () => z.ZodType }).getter();
    else return s;
  }
}

/**
 * keysAt lists the keys the object at `path` accepts (array indices and record keys step into
 * their elements), or none when no object schema is there: what an unknown key could have meant.
 */
export function keysAt(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s = unwrap(schema);
  for (const key of path) {
    const def = defOf(s);
    const next =
      def.type === 'object'
        ? def.shape?.[String(key)]
        : def.type === 'array'
          ? def.element
          : def.type === 'record'
            ? def.valueType
            : undefined;
    if (!next) return [];
    s = unwrap(next);
  }
  const def = defOf(s);
  return def.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

/**
 * strictEnvPrefixes lists the environment variable prefixes (with the trailing "_") of the schema's
 * strict objects: below one of them, a variable that names no leaf is a mistake, as an unknown key
 * in a file is. A non-strict object (a service that reads some sections of a shared environment)
 * leaves the variables of other sections alone.
 */
export function strictEnvPrefixes(schema: z.ZodType, prefix = 'TAPWIRE', path: string[] = []): string[] {
  const def = defOf(unwrap(schema));
  if (def.type !== 'object' || !def.shape) return [];
  const own = def.catchall && defOf(def.catchall).type === 'never' ? [`${envVarName(prefix, path)}_`] : [];
  return [
    ...own,
    ...Object.entries(def.shape).flatMap(([key, child]) => strictEnvPrefixes(child, prefix, [...path, key])),
  ];
}
