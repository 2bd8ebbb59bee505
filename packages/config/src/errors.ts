/** ConfigIssue is one problem with one config key, with where the bad value came from. */
export interface ConfigIssue {
  readonly path: string;
  readonly message: string;
  readonly source?: string;
}

/** ConfigError reports every problem of a configuration at once. */
export class ConfigError extends Error {
  readonly code = 'TAPWIRE_CONFIG_INVALID';
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(
      `invalid configuration:\n${issues.map((i) => `  - ${i.path}${i.source ? ` (from ${i.source})` : ''}: ${i.message}`).join('\n')}`,
      options,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}
