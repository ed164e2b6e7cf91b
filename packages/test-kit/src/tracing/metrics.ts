import { MetricReader } from '@opentelemetry/sdk-metrics';

/** One data point as tests compare it: its attributes and value. */
export interface MetricPoint {
  attributes: Record<string, unknown>;
  value: unknown;
}

/** A metric reader that tests collect on demand (`reader.collect()` or the helpers below). */
export class TestMetricReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** Every metric collected so far by name (its points, attributes copied), with each one's unit. */
export async function collectMetrics(
  reader: MetricReader,
): Promise<Map<string, MetricPoint[]> & { units: Map<string, string> }> {
  const { resourceMetrics } = await reader.collect();
  const out = new Map<string, MetricPoint[]>();
  const units = new Map<string, string>();
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      units.set(metric.descriptor.name, metric.descriptor.unit);
      out.set(
        metric.descriptor.name,
        metric.dataPoints.map((p) => ({ attributes: { ...p.attributes }, value: p.value })),
      );
    }
  }
  return Object.assign(out, { units });
}

/** The points of metric `name` collected so far (empty when it has none). */
export async function metricPoints(reader: MetricReader, name: string): Promise<MetricPoint[]> {
  return (await collectMetrics(reader)).get(name) ?? [];
}
