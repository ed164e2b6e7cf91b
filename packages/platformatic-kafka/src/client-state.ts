import type { ConsumerTracingOptions } from '@hoptrace/core';
import {
  clientTemplates,
  createInstrumentation,
  type Instrumentation,
  KAFKA_OPERATIONS,
  type KafkaOperation,
  type MetricAttributeCache,
  type OperationTemplates,
} from '@hoptrace/core/adapter';
import { ClientInfo } from './client-info.ts';
import {
  type PlatformaticConsumerOptions,
  type PlatformaticProducerOptions,
  resolveSettings,
  type Settings,
} from './options.ts';
import { PLATFORMATIC_KAFKA_SCOPE } from './scope.ts';

/** What every traced client (producer or consumer) resolves once, at wrap time. */
export interface ClientState {
  readonly instr: Instrumentation;
  readonly settings: Settings;
  readonly info: ClientInfo;
  readonly templates: OperationTemplates<KafkaOperation>;
  readonly metrics: MetricAttributeCache;
}

/**
 * Validates the options (a bad one throws a TypeError here) and builds nothing: for a client wrapped
 * before, whose wrapper is returned and these options ignored.
 */
export function validateOptions(
  options: PlatformaticConsumerOptions & PlatformaticProducerOptions & ConsumerTracingOptions,
): void {
  createInstrumentation(PLATFORMATIC_KAFKA_SCOPE, options);
  resolveSettings(options);
}

/**
 * Validates the options (a bad one throws a TypeError here) and builds a client's instrumentation,
 * settings, client info, span templates and metric attribute cache.
 *
 * @param consumer - whether the client is a consumer (its spans carry its group).
 */
export function clientState(
  client: object,
  options: PlatformaticConsumerOptions & PlatformaticProducerOptions & ConsumerTracingOptions,
  consumer: boolean,
): ClientState {
  const instr = createInstrumentation(PLATFORMATIC_KAFKA_SCOPE, options);
  const settings = resolveSettings(options);
  const info = new ClientInfo(client, settings, consumer);
  return {
    instr,
    settings,
    info,
    templates: clientTemplates(instr, KAFKA_OPERATIONS, info),
    metrics: instr.metricAttributes,
  };
}
