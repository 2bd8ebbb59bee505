import { existsSync, type FSWatcher, watch } from 'node:fs';
import { type AlertingConfig, loadAlertingFile, type RuleGroup, type Slo } from '@tapwire/alerting';
import type { Logger } from '@tapwire/telemetry';

/**
 * The SLOs (and rule groups) the API answers for: those of the alerter's alerting file
 * (`api.alertingFile`), re-read when the file changes and on reload() (SIGHUP in the service), as
 * the alerter does. A file that does not validate keeps the last good one and logs why, naming
 * the field; no file (or none on disk) has none.
 */

/** SloCatalog holds the SLOs (and rule groups) of the alerting file in effect. */
export interface SloCatalog {
  /** list is the SLOs of the last good alerting file ([] with no file). */
  list(): readonly Slo[];
  /** groups is the rule groups of the last good alerting file ([] with no file). */
  groups(): readonly RuleGroup[];
  /** reload re-reads the file; false (and the SLOs in use kept) when it does not validate. */
  reload(): boolean;
  /** close stops watching the file (idempotent). */
  close(): void;
}

/** createSloCatalog reads the alerting file once now, then again whenever it changes. */
export function createSloCatalog(options: { file?: string | undefined; logger: Logger }): SloCatalog {
  const { file, logger } = options;
  let alerting: AlertingConfig | undefined;
  const reload = (): boolean => {
    if (!file) return true;
    if (!existsSync(file)) {
      alerting = undefined;
      return true;
    }
    try {
      alerting = loadAlertingFile(file);
      return true;
    } catch (err) {
      logger.error(
        { file, problem: (err as Error).message },
        'alerting file rejected; the API keeps the SLOs and rules in use',
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
    list: () => alerting?.slos ?? [],
    groups: () => alerting?.groups ?? [],
    reload,
    close() {
      clearTimeout(debounce);
      watcher?.close();
      watcher = undefined;
    },
  };
}
