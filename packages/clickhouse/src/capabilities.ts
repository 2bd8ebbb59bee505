/**
 * What a ClickHouse server can do beyond the portable subset that 18.16 understands, derived from
 * its `version()` once per client. Each entry names the release that brought everything Tapwire
 * sends for it (ClickHouse's changelog), so an older or unparsable version gets the 18.16 path.
 */

/** ServerCapabilities are the named features Tapwire uses when the server has them. */
export interface ServerCapabilities {
  /** The server's `SELECT version()`, e.g. 26.9.2.1. */
  readonly version: string;
  /**
   * queryParams: SELECTs go out as `{name:Type}` placeholders with `param_<name>` values (19.11.3.11:
   * "Added support for prepared statements", #5331) instead of inline literals.
   */
  readonly queryParams: boolean;
  /**
   * ttl: retention sets each table's row TTL instead of dropping day partitions. Needs `MODIFY TTL`
   * (19.6.2.11: "TTL expressions for columns and tables", #4212), the MergeTree setting
   * `ttl_only_drop_parts` (#6191, 2019), the query setting `materialize_ttl_after_modify` (20.5,
   * #11042) and the MergeTree setting `materialize_ttl_recalculate_only` (21.10: "Improve ALTER ...
   * MATERIALIZE TTL by recalculating metadata only", #27019): 21.10 is the first with all four.
   */
  readonly ttl: boolean;
}

/** CapabilityName names one boolean entry of ServerCapabilities. */
export type CapabilityName = Exclude<keyof ServerCapabilities, 'version'>;

/** CAPABILITY_SINCE is the first release (major, minor) that has each capability. */
export const CAPABILITY_SINCE: Readonly<Record<CapabilityName, readonly [number, number]>> = {
  queryParams: [19, 11],
  ttl: [21, 10],
};

const VERSION = /^(\d+)\.(\d+)(?:\.\d+)*(?:[-+.][A-Za-z0-9.-]*)?$/;

/** capabilitiesOf derives the capabilities of a server from its version(); anything unparsable gets none. */
export function capabilitiesOf(version: string): ServerCapabilities {
  const m = VERSION.exec(version.trim());
  const major = m ? Number(m[1]) : 0;
  const minor = m ? Number(m[2]) : 0;
  const has = ([maj, min]: readonly [number, number]) => major > maj || (major === maj && minor >= min);
  return {
    version,
    queryParams: has(CAPABILITY_SINCE.queryParams),
    ttl: has(CAPABILITY_SINCE.ttl),
  };
}

/** noCapabilities is what a client assumes when told to use none: the 18.16 path everywhere. */
export function noCapabilities(version: string): ServerCapabilities {
  return { version, queryParams: false, ttl: false };
}

/** KnownCapabilities holds what a client has detected so far, for /readyz, /metrics and logs. */
export interface KnownCapabilities {
  /** current is the detected capabilities, undefined until the server has answered (asking again if it has not). */
  current(): ServerCapabilities | undefined;
}

/**
 * knownCapabilities tracks a client's capabilities: the first current() starts detecting them, they
 * are logged once known, and while they are not (the server was down) each current() tries again.
 */
export function knownCapabilities(
  source: { capabilities(): Promise<ServerCapabilities | undefined> },
  logger: { info(obj: object, msg: string): void; warn(obj: object, msg: string): void },
): KnownCapabilities {
  let known: ServerCapabilities | undefined;
  // Settled once an attempt succeeds, also with undefined (a store that is not ClickHouse).
  let state: 'idle' | 'asking' | 'settled' = 'idle';
  let warned = false;
  const detect = () => {
    if (state !== 'idle') return;
    state = 'asking';
    source.capabilities().then(
      (c) => {
        known = c;
        state = 'settled';
        if (c) logger.info({ clickhouse: c }, 'ClickHouse server version and capabilities');
      },
      (err: Error) => {
        state = 'idle';
        if (!warned) logger.warn({ err: err.message }, 'could not read the ClickHouse version yet');
        warned = true;
      },
    );
  };
  return {
    current() {
      detect();
      return known;
    },
  };
}
