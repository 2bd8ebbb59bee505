import type {
  AlertHistoryQuery,
  AlertsQuery,
  ConsumersQuery,
  LogsQuery,
  OverviewQuery,
  PipelineQuery,
  RecentTracesQuery,
  SaturationQuery,
  Scope,
  SeriesQuery,
  SignalQuery,
  SloCountsQuery,
  TraceQuery,
} from './queries.js';
import type {
  AlertHistoryResult,
  AlertsResult,
  ConsumersResult,
  LogsResult,
  OverviewResult,
  PipelineResult,
  RecentTracesResult,
  SaturationResult,
  SeriesResult,
  SignalResult,
  SloCountsResult,
  TraceResult,
} from './results.js';

/**
 * Store is the analytics seam: the questions Tapwire answers, not SQL. Every method takes the
 * caller's tenant scope first and never returns another tenant's rows. Failures are AnalyticsErrors.
 */
export interface Store {
  /** kind names the database behind the store, for /readyz. */
  readonly kind: 'clickhouse' | 'duckdb';
  overview(scope: Scope, query: OverviewQuery): Promise<OverviewResult>;
  series(scope: Scope, query: SeriesQuery): Promise<SeriesResult>;
  saturation(scope: Scope, query: SaturationQuery): Promise<SaturationResult>;
  consumers(scope: Scope, query: ConsumersQuery): Promise<ConsumersResult>;
  /** trace resolves null when no span of the trace is visible in the scope. */
  trace(scope: Scope, query: TraceQuery): Promise<TraceResult | null>;
  recentTraces(scope: Scope, query: RecentTracesQuery): Promise<RecentTracesResult>;
  logs(scope: Scope, query: LogsQuery): Promise<LogsResult>;
  /** pipeline answers a tenant scope with that tenant's figures only: no topic lag (shared by all tenants). */
  pipeline(scope: Scope, query: PipelineQuery): Promise<PipelineResult>;
  /** signal evaluates an alert rule's measure for every series in one query. */
  signal(scope: Scope, query: SignalQuery): Promise<SignalResult>;
  /** alerts lists the current state of every alert series the scope may see. */
  alerts(scope: Scope, query: AlertsQuery): Promise<AlertsResult>;
  /** alertHistory lists transitions and deliveries, newest first. */
  alertHistory(scope: Scope, query: AlertHistoryQuery): Promise<AlertHistoryResult>;
  /**
   * sloCounts counts an SLO's good and total requests in each window exactly (every request of
   * the window, rollups for its whole hours and minutes, raw rows for the seconds at its edges).
   */
  sloCounts(scope: Scope, query: SloCountsQuery): Promise<SloCountsResult>;
  /**
   * sloCountsMany is sloCounts for many SLOs at once, answered in the order asked: each data level
   * is read once for all of them (a statement per level, not per SLO and level).
   */
  sloCountsMany(scope: Scope, queries: readonly SloCountsQuery[]): Promise<SloCountsResult[]>;
  /** ping resolves true when the store answers. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
