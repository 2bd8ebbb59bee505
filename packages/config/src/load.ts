import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { closestName } from './closest-name.js';
import { ConfigError, type ConfigIssue } from './errors.js';
import { type ConfigLeaf, configLeaves, keysAt } from './schema-walk.js';
import { describeUnknownEnvVar, unknownEnvVars } from './unknown-env.js';

/** ENV_PREFIX starts every Tapwire environment variable. */
export const ENV_PREFIX = 'TAPWIRE';

/** CONFIG_FILE_ENV names the environment variable that points at the YAML/JSON config file. */
export const CONFIG_FILE_ENV = 'TAPWIRE_CONFIG';

/**
 * NON_SETTING_ENV_VARS are the TAPWIRE_* variables Tapwire reads that are not settings; any other
 * that names no setting is warned about (envWarnings). Add here a variable read for another purpose.
 */
export const NON_SETTING_ENV_VARS: readonly string[] = [CONFIG_FILE_ENV];

/** LoadConfigOptions says where configuration comes from; later sources override earlier ones. */
export interface LoadConfigOptions {
  /** Environment to read; defaults to process.env (this package is the only reader of it). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Path of a YAML or JSON file; defaults to $TAPWIRE_CONFIG; none when both are unset. */
  readonly file?: string;
  /** Values from command-line flags, applied last. */
  readonly overrides?: Record<string, unknown>;
}

type Plain = Record<string, unknown>;

function isPlain(v: unknown): v is Plain {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Plain, over: Plain): Plain {
  const out: Plain = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isPlain(v) && isPlain(out[k]) ? deepMerge(out[k] as Plain, v) : v;
  }
  return out;
}

function setPath(target: Plain, path: readonly string[], value: unknown): void {
  let node = target;
  for (const key of path.slice(0, -1)) {
    if (!isPlain(node[key])) node[key] = {};
    node = node[key] as Plain;
  }
  node[path[path.length - 1]!] = value;
}

function coerce(leaf: ConfigLeaf, text: string): unknown {
  switch (leaf.kind) {
    case 'number': {
      const n = Number(text);
      return text.trim() === '' || Number.isNaN(n) ? text : n;
    }
    case 'boolean':
      if (/^(true|1|yes|on)$/i.test(text)) return true;
      if (/^(false|0|no|off)$/i.test(text)) return false;
      return text;
    case 'list':
      return text.trim().startsWith('[')
        ? safeJson(text)
        : text
            .split(',')
            .map((s) => s.trim())
            .filter((s) => s !== '');
    case 'json':
      return safeJson(text);
    default:
      return text;
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function readFile(path: string): { value: Plain } | { issue: ConfigIssue } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { issue: { path: '(file)', message: `cannot read ${path}: ${(err as Error).message}` } };
  }
  let value: unknown;
  try {
    value = path.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    return { issue: { path: '(file)', message: `cannot parse ${path}: ${(err as Error).message}` } };
  }
  if (value === null || value === undefined) return { value: {} };
  if (!isPlain(value))
    return { issue: { path: '(file)', message: `${path} must hold a mapping at the top level` } };
  return { value };
}

/**
 * loadConfig builds a validated configuration from defaults, a YAML/JSON file, TAPWIRE_* environment
 * variables and overrides, in that order; it throws one ConfigError listing every bad key.
 */
export function loadConfig<S extends z.ZodType>(schema: S, options: LoadConfigOptions = {}): z.infer<S> {
  const env = options.env ?? process.env;
  const leaves = configLeaves(schema, ENV_PREFIX);
  const issues: ConfigIssue[] = [];
  const sources = new Map<string, string>();

  let merged: Plain = {};
  const file = options.file ?? env[CONFIG_FILE_ENV];
  if (file) {
    const read = readFile(file);
    if ('issue' in read) issues.push(read.issue);
    else merged = read.value;
  }
  const fromEnv: Plain = {};
  for (const leaf of leaves) {
    const text = env[leaf.envVar];
    if (text === undefined) continue;
    setPath(fromEnv, leaf.path, coerce(leaf, text));
    sources.set(leaf.path.join('.'), `env ${leaf.envVar}`);
  }
  merged = deepMerge(deepMerge(merged, fromEnv), options.overrides ?? {});
  for (const key of Object.keys(options.overrides ?? {})) sources.set(key, 'command line');

  const result = schema.safeParse(merged);
  if (!result.success) {
    for (const i of result.error.issues) {
      const path = i.path.join('.') || '(root)';
      const source = sourceOf(sources, path) ?? (file ? file : undefined);
      const message =
        i.code === 'unrecognized_keys' ? unknownKeysMessage(i.keys, keysAt(schema, i.path)) : i.message;
      issues.push(source ? { path, message, source } : { path, message });
    }
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return result.data as z.infer<S>;
}

function unknownKeysMessage(keys: readonly string[], accepted: readonly string[]): string {
  const named = keys.map((key) => {
    const meant = closestName(key, accepted);
    return meant ? `${key} (did you mean ${meant}?)` : key;
  });
  return `unknown key${keys.length > 1 ? 's' : ''} ${named.join(', ')}`;
}

/**
 * envWarnings lists, one line each, the TAPWIRE_* environment variables that name no setting of
 * the schema (with the setting each most likely meant): a typo is otherwise silently ignored.
 */
export function envWarnings(schema: z.ZodType, options: LoadConfigOptions = {}): string[] {
  return unknownEnvVars(schema, options.env ?? process.env, ENV_PREFIX, NON_SETTING_ENV_VARS).map(
    describeUnknownEnvVar,
  );
}

/**
 * givenSections lists the top-level sections the file, the environment and overrides set at all
 * (defaults aside): how `tapwire start` tells "no Kafka settings" from "Kafka at its defaults".
 */
export function givenSections(schema: z.ZodType, options: LoadConfigOptions = {}): Set<string> {
  const env = options.env ?? process.env;
  const given = new Set<string>(Object.keys(options.overrides ?? {}));
  const file = options.file ?? env[CONFIG_FILE_ENV];
  if (file) {
    const read = readFile(file);
    if ('value' in read) for (const key of Object.keys(read.value)) given.add(key);
  }
  for (const leaf of configLeaves(schema, ENV_PREFIX))
    if (env[leaf.envVar] !== undefined && leaf.path[0] !== undefined) given.add(leaf.path[0]);
  return given;
}

function sourceOf(sources: Map<string, string>, path: string): string | undefined {
  for (let p = path; p !== ''; p = p.includes('.') ? p.slice(0, p.lastIndexOf('.')) : '') {
    const s = sources.get(p);
    if (s) return s;
  }
  return undefined;
}

/** ExitFn ends the process; a parameter so tests can observe the exit code. */
export type ExitFn = (code: number) => never;

/**
 * loadConfigOrExit loads configuration or prints every problem to stderr and exits with code 2;
 * TAPWIRE_* variables that name no setting are warned about on stderr (each process loads its
 * configuration once, so once).
 */
export function loadConfigOrExit<S extends z.ZodType>(
  schema: S,
  options: LoadConfigOptions = {},
  exit: ExitFn = process.exit,
  write: (text: string) => void = (t) => process.stderr.write(t),
): z.infer<S> {
  for (const warning of envWarnings(schema, options)) write(`tapwire: warning: ${warning}\n`);
  try {
    return loadConfig(schema, options);
  } catch (err) {
    if (err instanceof ConfigError) {
      write(`tapwire: ${err.message}\n`);
      return exit(2);
    }
    throw err;
  }
}
