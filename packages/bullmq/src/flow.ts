import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_MESSAGE_ID,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_SYSTEM_NAME,
  createInstrumentation,
  type Instrumentation,
  MESSAGING_SYSTEM,
  SpanHandle,
  startMessagingSpan,
} from '@hoptrace/core';
import { type Attributes, type Context, context as contextApi, SpanKind, trace } from '@opentelemetry/api';
import { CHILDREN_CARRIER_KEY, parseCarrier, withCarrier } from './carrier.ts';
import { type JobOptionsShape, jobAttributes, jobIdOf } from './job-attributes.ts';
import type { FlowTracingOptions } from './options.ts';
import { delegatingProxy, isWrapper } from './proxy.ts';
import { settleSend } from './queue.ts';
import { serverAttributes } from './server.ts';
import { SCOPE_NAME, VERSION } from './version.ts';

/** The members of a BullMQ `FlowProducer` that {@link traceFlowProducer} relies on. */
export interface FlowProducerLike {
  readonly opts?: object | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: BullMQ's signatures differ by version
  add(...args: any[]): Promise<unknown>;
}

interface FlowNode {
  name?: unknown;
  queueName?: unknown;
  opts?: JobOptionsShape;
  children?: unknown;
}

interface JobNodeShape {
  job?: unknown;
  children?: unknown;
}

type AsyncMethod = (...args: unknown[]) => Promise<unknown>;

/**
 * Wraps a BullMQ `FlowProducer` so that `add` and `addBulk` of job trees are traced: one
 * `send {root queue}` CLIENT span for the call (`send` without a destination for `addBulk`), and a
 * `create {queue}` PRODUCER span per node, child of the send span, whose context the node carries in
 * `opts.telemetry.metadata`. Node ids go onto the create spans once BullMQ returns them.
 *
 * Never mutates the caller's tree (nodes are copied), never overwrites a node's existing context.
 * Idempotent; bad options throw a TypeError here.
 */
export function traceFlowProducer<P extends FlowProducerLike>(
  flowProducer: P,
  options: FlowTracingOptions = {},
): P {
  if (!flowProducer || typeof flowProducer !== 'object' || typeof flowProducer.add !== 'function') {
    throw new TypeError(`Expected \`flowProducer\` to be a BullMQ FlowProducer, got ${String(flowProducer)}`);
  }
  if (isWrapper(flowProducer)) return flowProducer;
  const instr = createInstrumentation(SCOPE_NAME, VERSION, options);
  const server = serverAttributes((flowProducer.opts as { connection?: unknown } | undefined)?.connection);
  const target = flowProducer as unknown as Record<string, AsyncMethod>;

  const traced = (
    roots: readonly FlowNode[],
    destination: string | undefined,
    call: (copies: FlowNode[]) => Promise<unknown>,
  ) => {
    const parent = contextApi.active();
    const send = startMessagingSpan(instr.tracer, {
      system: MESSAGING_SYSTEM.bullmq,
      operationType: 'send',
      operationName: 'send',
      destination,
      kind: SpanKind.CLIENT,
      attributes: { ...server },
      parent,
      legacyAttributes: instr.legacyAttributes,
    });
    const ctx = trace.setSpan(parent, send);
    const creates: SpanHandle[] = [];
    const copies = roots.map((node) => copyNode(instr, server, node, ctx, creates));
    send.setAttribute(ATTR_MESSAGING_BATCH_MESSAGE_COUNT, creates.length);
    const metricAttributes: Attributes = {
      [ATTR_MESSAGING_SYSTEM_NAME]: MESSAGING_SYSTEM.bullmq,
      [ATTR_MESSAGING_OPERATION_NAME]: 'send',
    };
    if (destination !== undefined) metricAttributes[ATTR_MESSAGING_DESTINATION_NAME] = destination;
    return settleSend(instr, [], new SpanHandle(send), metricAttributes, creates.length, () =>
      contextApi
        .with(ctx, () => call(copies))
        .then(
          (result) => {
            // Job ids, in the same depth-first order the create spans were started.
            const ids: Array<string | undefined> = [];
            for (const node of Array.isArray(result) ? result : [result])
              collectIds(node as JobNodeShape, ids);
            for (let i = 0; i < creates.length; i++) {
              const id = ids[i];
              if (id !== undefined)
                (creates[i] as SpanHandle).span.setAttribute(ATTR_MESSAGING_MESSAGE_ID, id);
            }
            for (const handle of creates) handle.end();
            return result;
          },
          (error: unknown) => {
            for (const handle of creates) handle.fail(error);
            throw error;
          },
        ),
    );
  };

  const overrides: Record<string, unknown> = {
    add(flow: FlowNode, opts?: unknown): Promise<unknown> {
      if (!flow || typeof flow !== 'object')
        return (target.add as AsyncMethod).call(flowProducer, flow, opts);
      const destination = typeof flow.queueName === 'string' ? flow.queueName : undefined;
      return traced([flow], destination, (copies) =>
        (target.add as AsyncMethod).call(flowProducer, copies[0], opts),
      );
    },
    addBulk(flows: readonly FlowNode[]): Promise<unknown> {
      if (!Array.isArray(flows)) return (target.addBulk as AsyncMethod).call(flowProducer, flows);
      return traced(flows, undefined, (copies) => (target.addBulk as AsyncMethod).call(flowProducer, copies));
    },
  };
  return delegatingProxy(flowProducer, overrides);
}

/** Copies one node (depth first), starting its create span under the flow's send span. */
function copyNode(
  instr: Instrumentation,
  server: Attributes,
  node: FlowNode,
  parent: Context,
  creates: SpanHandle[],
): FlowNode {
  if (!node || typeof node !== 'object') return node;
  const span = startMessagingSpan(instr.tracer, {
    system: MESSAGING_SYSTEM.bullmq,
    operationType: 'create',
    operationName: 'create',
    destination: typeof node.queueName === 'string' ? node.queueName : undefined,
    attributes: jobAttributes(node.name, node.opts, { ...server }),
    parent,
    legacyAttributes: instr.legacyAttributes,
  });
  creates.push(new SpanHandle(span));
  const ctx = trace.setSpan(parent, span);
  if (!Array.isArray(node.children)) return { ...node, opts: withCarrier(node.opts, ctx) };
  const children = (node.children as FlowNode[]).map((child) =>
    copyNode(instr, server, child, parent, creates),
  );
  // The parent lists its direct children's creation contexts so its processing can link to them.
  const traceparents: string[] = [];
  for (const child of children) {
    const parsed = child && typeof child === 'object' ? parseCarrier(child.opts) : undefined;
    const tp = parsed?.traceparent;
    if (typeof tp === 'string') traceparents.push(tp);
  }
  const extra = traceparents.length > 0 ? { [CHILDREN_CARRIER_KEY]: traceparents.join(' ') } : undefined;
  return { ...node, opts: withCarrier(node.opts, ctx, extra), children };
}

function collectIds(node: JobNodeShape | undefined, ids: Array<string | undefined>): void {
  if (!node || typeof node !== 'object') return;
  ids.push(jobIdOf(node.job));
  if (Array.isArray(node.children)) {
    for (const child of node.children) collectIds(child as JobNodeShape, ids);
  }
}
