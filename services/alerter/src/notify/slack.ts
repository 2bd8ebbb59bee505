import { formatValue, truncate } from './format.js';
import { destinationId, postJson } from './http.js';
import { commonOf, groupStatus, type Notification, type NotifiedAlert, type Notifier } from './types.js';

/** SlackReceiverConfig configures one Slack incoming webhook. */
export interface SlackReceiverConfig {
  readonly webhookUrl: string;
  readonly sendResolved: boolean;
  /** Alerts listed one per section; the rest are counted in a "+k more" line (Block Kit allows 50 blocks). */
  readonly maxAlertsListed: number;
  readonly timeoutMs: number;
}

// Block Kit limits: 50 blocks, 3000 characters per section text, 150 per header.
const SECTION_CHARS = 3000;
const HEADER_CHARS = 150;

const SEVERITY_EMOJI: Record<string, string> = {
  critical: ':red_circle:',
  error: ':large_orange_circle:',
  warning: ':large_yellow_circle:',
  info: ':large_blue_circle:',
};

function mrkdwnEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function alertSection(a: NotifiedAlert): Record<string, unknown> {
  const name = a.labels.alertname ?? 'alert';
  const labels = Object.entries(a.labels)
    .filter(([k]) => k !== 'alertname')
    .map(([k, v]) => `\`${mrkdwnEscape(k)}=${mrkdwnEscape(v)}\``)
    .join(' ');
  const lines = [
    `*${mrkdwnEscape(name)}* — ${a.status === 'firing' ? 'firing' : 'resolved'}: ${formatValue(a.value, a.unit)} vs threshold ${formatValue(a.threshold, a.unit)}`,
    a.annotations.summary ? mrkdwnEscape(a.annotations.summary) : '',
    labels,
    `<${a.generatorUrl}|API query>${a.annotations.runbook_url ? ` · <${a.annotations.runbook_url}|Runbook>` : ''}`,
  ].filter(Boolean);
  return { type: 'section', text: { type: 'mrkdwn', text: truncate(lines.join('\n'), SECTION_CHARS) } };
}

/** slackMessage builds the Block Kit message of a notification (also used by tests to check limits). */
export function slackMessage(n: Notification, maxAlertsListed: number): Record<string, unknown> {
  const status = groupStatus(n.alerts);
  const firing = n.alerts.filter((a) => a.status === 'firing');
  const common = commonOf(n.alerts.map((a) => a.labels));
  const severity = common.severity ?? n.alerts[0]?.labels.severity ?? 'error';
  const name = common.alertname ?? Object.values(n.groupLabels).join(' ');
  const group = Object.entries(n.groupLabels)
    .filter(([k]) => k !== 'alertname')
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const title =
    status === 'firing'
      ? `[FIRING:${firing.length}] ${name}${group ? ` ${group}` : ''}`
      : `[RESOLVED] ${name}${group ? ` ${group}` : ''}`;
  const listed = n.alerts.slice(0, Math.min(maxAlertsListed, 45));
  const blocks: Record<string, unknown>[] = [
    { type: 'header', text: { type: 'plain_text', text: truncate(title, HEADER_CHARS), emoji: true } },
    {
      type: 'section',
      text: {
        type: 'mrkdwn',
        text: truncate(
          `${status === 'firing' ? (SEVERITY_EMOJI[severity] ?? ':red_circle:') : ':white_check_mark:'} *Severity:* ${mrkdwnEscape(severity)}  *Rule:* ${mrkdwnEscape(common.rule_id ?? name)}  *Alerts:* ${firing.length} firing, ${n.alerts.length - firing.length} resolved`,
          SECTION_CHARS,
        ),
      },
    },
    ...listed.map(alertSection),
  ];
  if (n.alerts.length > listed.length)
    blocks.push({
      type: 'section',
      text: { type: 'mrkdwn', text: `+${n.alerts.length - listed.length} more` },
    });
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `<${n.dashboardUrl}|Grafana dashboard> · <${n.externalUrl}|Alerts>` }],
  });
  return { text: truncate(title, SECTION_CHARS), blocks };
}

/** createSlackNotifier posts Block Kit messages to a Slack incoming webhook (200 "ok" = delivered). */
export function createSlackNotifier(receiver: string, config: SlackReceiverConfig): Notifier {
  return {
    receiver,
    kind: 'slack',
    destination: destinationId('slack', config.webhookUrl),
    sendResolved: config.sendResolved,
    send: (n, signal) =>
      postJson(config.webhookUrl, JSON.stringify(slackMessage(n, config.maxAlertsListed)), {
        signal: AbortSignal.any([signal, AbortSignal.timeout(config.timeoutMs)]),
        accept: (_status, text) => text.trim() === 'ok' || text.trim() === '',
      }),
  };
}
