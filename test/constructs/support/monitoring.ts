import type { Template } from 'aws-cdk-lib/assertions';

/** One alarm of a synthesized template: its logical ID, full name and properties. */
export interface TemplateAlarm {
  readonly logicalId: string;
  readonly name: string;
  readonly props: Record<string, unknown>;
}

/** A metric as CloudFormation renders it (alarm `MetricStat.Metric` or flat alarm fields). */
export interface TemplateMetric {
  readonly namespace: string;
  readonly metricName: string;
  readonly dimensions: Readonly<Record<string, unknown>>;
}

/** Every alarm named `<stackName>-…`, by the rest of its name. */
export function alarmsOf(template: Template, stackName: string): Map<string, TemplateAlarm> {
  const out = new Map<string, TemplateAlarm>();
  for (const [logicalId, resource] of Object.entries(
    template.findResources('AWS::CloudWatch::Alarm'),
  )) {
    const props = (resource as { Properties: Record<string, unknown> }).Properties;
    const name = props.AlarmName;
    if (typeof name !== 'string' || !name.startsWith(`${stackName}-`)) continue;
    out.set(name.slice(stackName.length + 1), { logicalId, name, props });
  }
  return out;
}

interface CfnDimension {
  Name: string;
  Value: unknown;
}

function dimensionMap(dimensions: readonly CfnDimension[] | undefined): Record<string, unknown> {
  return Object.fromEntries((dimensions ?? []).map((d) => [d.Name, d.Value]));
}

/** The metrics an alarm reads: its own, or each one of its metric-math expression. */
export function alarmMetrics(alarm: Record<string, unknown>): TemplateMetric[] {
  if (typeof alarm.MetricName === 'string') {
    return [
      {
        namespace: alarm.Namespace as string,
        metricName: alarm.MetricName,
        dimensions: dimensionMap(alarm.Dimensions as CfnDimension[] | undefined),
      },
    ];
  }
  const queries = (alarm.Metrics ?? []) as {
    MetricStat?: { Metric: { Namespace: string; MetricName: string; Dimensions?: CfnDimension[] } };
  }[];
  return queries.flatMap((q) =>
    q.MetricStat
      ? [
          {
            namespace: q.MetricStat.Metric.Namespace,
            metricName: q.MetricStat.Metric.MetricName,
            dimensions: dimensionMap(q.MetricStat.Metric.Dimensions),
          },
        ]
      : [],
  );
}

/** A dashboard widget as the body renders it. */
export interface DashboardWidget {
  readonly type: string;
  readonly properties: {
    readonly title?: string;
    readonly markdown?: string;
    readonly metrics?: readonly (readonly unknown[])[];
    readonly alarms?: readonly string[];
  };
}

/**
 * The widgets of the one dashboard, the body parsed with each CloudFormation reference (`Ref`,
 * `Fn::GetAtt`) written as `{{LogicalId}}` or `{{LogicalId.Attr}}`.
 */
export function dashboardWidgets(template: Template): DashboardWidget[] {
  const dashboards = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  if (dashboards.length !== 1)
    throw new Error(`expected one dashboard, found ${dashboards.length}`);
  const body = (dashboards[0] as { Properties: { DashboardBody: unknown } }).Properties
    .DashboardBody;
  const text = (() => {
    if (typeof body === 'string') return body;
    const join = (body as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
    return join[1]
      .map((part) => {
        if (typeof part === 'string') return part;
        const p = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
        if (p.Ref) return `{{${p.Ref}}}`;
        if (p['Fn::GetAtt']) return `{{${p['Fn::GetAtt'].join('.')}}}`;
        return '{{?}}';
      })
      .join(join[0]);
  })();
  return (JSON.parse(text) as { widgets: DashboardWidget[] }).widgets;
}

/**
 * The metrics of a graph widget as namespace/name pairs with their dimensions, from the body's
 * compact form `[namespace, name, dim1, value1, …, {options}]` (`'.'` repeats the row above).
 */
export function widgetMetrics(widget: DashboardWidget): TemplateMetric[] {
  const out: TemplateMetric[] = [];
  let previous: unknown[] = [];
  for (const row of widget.properties.metrics ?? []) {
    const values = row.filter((v) => typeof v === 'string');
    if (values.length < 2) continue; // a math expression row: [{expression, …}]
    const resolved = values.map((v, i) => (v === '.' ? previous[i] : v)) as string[];
    previous = resolved;
    const [namespace, metricName, ...rest] = resolved;
    const dimensions: Record<string, unknown> = {};
    for (let i = 0; i + 1 < rest.length; i += 2) dimensions[rest[i]!] = rest[i + 1];
    out.push({ namespace: namespace!, metricName: metricName!, dimensions });
  }
  return out;
}
