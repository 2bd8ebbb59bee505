import { hashToken } from '@tapwire/config';
import { DEFAULT_TENANT } from '@tapwire/schema';
import type { TapwireConfig } from './cli-config.js';
import { type LocalToken, localToken } from './local-token.js';

/** StartTokens are the tokens `tapwire start` runs the API and the OTLP receiver with. */
export interface StartTokens {
  readonly api: TapwireConfig['api']['tokens'];
  readonly otlp: TapwireConfig['otlp']['tokens'];
  /** The data directory's API token (read and admin on every tenant), when it is in `api`. */
  readonly localApi?: LocalToken;
  /** The data directory's OTLP token (tenant default, spans only), when it is in `otlp`. */
  readonly localOtlp?: LocalToken;
}

/**
 * startTokens adds the data directory's own tokens to the configured ones: its API token when
 * api.tokens is empty, its OTLP token when otlp.tokens is empty, both for the demo. They are two
 * tokens in two files: the OTLP one goes into every app's exporter headers, so it must not admit
 * the API, and the API token is not taken as an OTLP token. Only their hashes go into the config.
 */
export function startTokens(
  config: {
    readonly api: { readonly tokens: StartTokens['api'] };
    readonly otlp: { readonly tokens: StartTokens['otlp'] };
  },
  dir: string,
  demo: boolean,
): StartTokens {
  const localApi = config.api.tokens.length === 0 || demo ? localToken(dir, 'API') : undefined;
  const localOtlp = config.otlp.tokens.length === 0 || demo ? localToken(dir, 'OTLP') : undefined;
  const apiHash = localApi && hashToken(localApi.token);
  const otlpHash = localOtlp && hashToken(localOtlp.token);
  return {
    api: apiHash
      ? [
          // A configured entry of the same token would be a duplicate hash, which the API refuses.
          ...config.api.tokens.filter((t) => t.sha256 !== apiHash),
          { name: 'local', sha256: apiHash, tenant: '*', scopes: ['read', 'admin'] },
        ]
      : config.api.tokens,
    otlp: otlpHash
      ? [
          ...config.otlp.tokens.filter((t) => t.sha256 !== otlpHash),
          { name: 'local', sha256: otlpHash, tenant: DEFAULT_TENANT },
        ]
      : config.otlp.tokens,
    ...(localApi ? { localApi } : {}),
    ...(localOtlp ? { localOtlp } : {}),
  };
}
