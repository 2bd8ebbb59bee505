import { ENV_PREFIX, envVarName } from '@tapwire/config';

/** ListenerSetting says where a listener binds and which settings say so: `section` holds `host` and `port`. */
export interface ListenerSetting {
  /** Dotted config path of the section with `host` and `port`, e.g. ingest.admin. */
  readonly section: string;
  readonly host: string;
  readonly port: number;
}

/** ListenErrorCode tells a port someone else holds from an address this process may not use. */
export type ListenErrorCode = 'TAPWIRE_PORT_IN_USE' | 'TAPWIRE_LISTEN_FAILED';

/**
 * ListenError is a listener that could not bind, naming the setting to change and its environment
 * variable; the operating system's error is its cause. A startup error: not retryable.
 */
export class ListenError extends Error {
  readonly code: ListenErrorCode;
  readonly retryable = false;
  /** Dotted config path of the setting to change, e.g. ingest.admin.port. */
  readonly setting: string;
  /** The host:port that could not be bound. */
  readonly address: string;
  constructor(code: ListenErrorCode, message: string, setting: string, address: string, cause: unknown) {
    super(message, { cause });
    this.name = 'ListenError';
    this.code = code;
    this.setting = setting;
    this.address = address;
  }
}

const named = (setting: string) => `${setting} (env ${envVarName(ENV_PREFIX, setting.split('.'))})`;

/**
 * explainListenError turns the operating system's refusal to bind into a ListenError naming the
 * setting: the port when it is taken or forbidden, the host when the address is not this machine's.
 * Any other error is returned as it is.
 */
export function explainListenError(err: unknown, at: ListenerSetting): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const address = `${at.host.includes(':') ? `[${at.host}]` : at.host}:${at.port}`;
  switch (code) {
    case 'EADDRINUSE': {
      const setting = `${at.section}.port`;
      return new ListenError(
        'TAPWIRE_PORT_IN_USE',
        `${address} is in use — ${named(setting)}`,
        setting,
        address,
        err,
      );
    }
    case 'EACCES': {
      const setting = `${at.section}.port`;
      const message = `cannot listen on ${address}: permission denied (ports below 1024 need privileges) — ${named(setting)}`;
      return new ListenError('TAPWIRE_LISTEN_FAILED', message, setting, address, err);
    }
    case 'EADDRNOTAVAIL':
    case 'ENOTFOUND':
    case 'EAI_AGAIN': {
      const setting = `${at.section}.host`;
      const message = `cannot listen on ${address}: not an address of this machine (${code}) — ${named(setting)}`;
      return new ListenError('TAPWIRE_LISTEN_FAILED', message, setting, address, err);
    }
    default:
      return err;
  }
}

/** listenAt runs `listen` and rethrows a refusal to bind as a ListenError naming the setting. */
export async function listenAt<T>(at: ListenerSetting, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen();
  } catch (err) {
    throw explainListenError(err, at);
  }
}
