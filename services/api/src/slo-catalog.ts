import { existsSync, type FSWatcher, watch } from 'node:fs';
import { loadAlertingFile, type Slo } from '@tapwire/alerting';
import type { Logger } from '@tapwire/telemetry';

/**
 * The SLOs the API answers for: the `slos:` of the alerter's alerting file (`api.alertingFile`),
 * re-read when the file changes and on reload() (SIGHUP in the service), as the alerter does. A
 * file that does not validate keeps the last good SLOs and logs why, naming the field.
 */

/** SloCatalog holds the SLOs in effect. */
export interface SloCatalog {
  /** list is the SLOs of the last good alerting file ([] with no file). */
  list(): readonly Slo[];
  /** reload re-reads the file; false (and the SLOs in use kept) when it does not validate. */
  reload(): boolean;
  /** close stops watching the file (idempotent). */
  close(): void;
}

/** createSloCatalog reads the alerting file once now, then again whenever it changes. */
export function createSloCatalog(options: { file?: string | undefined; logger: Logger }): SloCatalog {
  const { file, logger } = options;
  let slos: readonly Slo[] = [];
  const reload = (): boolean => {
    if (!file) return true;
    if (!existsSync(file)) {
      slos = [];
      return true;
    }
    try {
      slos = loadAlertingFile(file).slos;
      return true;
    } catch (err) {
      logger.error(
        { file, problem: (err as Error).message },
        'alerting file rejected; the API keeps the SLOs in use',
      );
      return false;
    }
  };
  reload();
  let watcher: FSWatcher | undefined;
  let debounce: NodeJS.Timeout | undefined;
  if (file && existsSync(file)) {
    watcher = watch(file, () => {
      clearTimeout(debounce);
      debounce = setTimeout(reload, 200);
      debounce.unref();
    });
    watcher.unref();
  }
  return {
    list: () => slos,
    reload,
    close() {
      clearTimeout(debounce);
      watcher?.close();
      watcher = undefined;
    },
  };
}
