import type { z } from 'zod';
import { closestName } from './closest-name.js';
import { configLeaves, strictEnvPrefixes } from './schema-walk.js';

/** UnknownEnvVar is a TAPWIRE_* environment variable that names no setting, and the one it most likely meant. */
export interface UnknownEnvVar {
  readonly name: string;
  readonly suggestion?: string;
}

/**
 * unknownEnvVars lists the variables of `env` under `prefix` that name none of the schema's settings
 * nor one of `alsoKnown` (variables read for another purpose, such as TAPWIRE_CONFIG), in name order.
 * Only variables below a strict object of the schema are judged (see strictEnvPrefixes), so a
 * service that reads a few sections of a shared environment does not flag the others' settings.
 */
export function unknownEnvVars(
  schema: z.ZodType,
  env: Readonly<Record<string, string | undefined>>,
  prefix: string,
  alsoKnown: readonly string[] = [],
): UnknownEnvVar[] {
  const settings = configLeaves(schema, prefix).map((l) => l.envVar);
  const known = new Set([...settings, ...alsoKnown]);
  const judged = strictEnvPrefixes(schema, prefix);
  const unknown: UnknownEnvVar[] = [];
  for (const name of Object.keys(env).sort()) {
    if (known.has(name) || env[name] === undefined) continue;
    // A lower-case variable is still a typo of ours: the environment is case-sensitive.
    const upper = name.toUpperCase();
    if (!judged.some((p) => upper.startsWith(p))) continue;
    const suggestion = closestName(name, [...settings, ...alsoKnown]);
    unknown.push(suggestion ? { name, suggestion } : { name });
  }
  return unknown;
}

/** describeUnknownEnvVar is the warning a user reads: the variable, and the setting it may have meant. */
export function describeUnknownEnvVar(v: UnknownEnvVar): string {
  return `${v.name} is not a Tapwire setting${v.suggestion ? `; did you mean ${v.suggestion}?` : ''}`;
}
