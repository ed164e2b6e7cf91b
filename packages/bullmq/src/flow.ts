import {
  ATTR_MESSAGING_BATCH_MESSAGE_COUNT,
  assertClient,
  describeKind,
  existingWrapper,
  type Interceptor,
  injectContextUnchecked,
  interceptMethods,
  Operation,
  setSpanAttributes,
  startClientSpan,
} from '@hoptrace/core/adapter';
import {
  type Context,
  context as contextApi,
  type Link,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  trace,
} from '@opentelemetry/api';
import { type ListingParent, MAX_CHILD_LINKS, withChildCarriers } from './carrier.ts';
import { type JobOptionsShape, jobAttributesOf, setJobIds } from './job-attributes.ts';
import type { FlowTracingOptions } from './options.ts';
import {
  carriesOwnContext,
  optionsWithContext,
  type ProducerState,
  producerState,
  readJobContext,
  sendMetric,
} from './producer.ts';

/** The members of a BullMQ `FlowProducer` that {@link traceFlowProducer} relies on. */
export interface FlowProducerLike {
  readonly opts?: object | undefined;
  // biome-ignore lint/suspicious/noExplicitAny: BullMQ's signatures differ by version
  add(...args: any[]): Promise<unknown>;
}

interface FlowNode {
  name?: unknown;
  queueName?: unknown;
  prefix?: unknown;
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
 * `send {root queue}` span for the call (`send` without a destination for `addBulk`) whose context
 * every node carries in `opts.telemetry.metadata`. With `createSpans: true`, a `create {queue}` span
 * per node (child of the send span, which becomes a CLIENT span), whose context the node carries
 * (none for a node carrying the caller's own context, which the send span links to, as with `addBulk`);
 * each parent node then lists its children's contexts (through the registered propagator) and names
 * itself (its key prefix, its queue, and its `jobId` when it has one), so its processing, and no copy
 * of its metadata elsewhere, links to them. Node ids go onto the create spans once BullMQ returns them.
 *
 * Never mutates the caller's tree (nodes are copied), never overwrites a node's existing context.
 * Every span ends even when `add` throws synchronously. Idempotent; bad options throw a TypeError here.
 */
export function traceFlowProducer<P extends FlowProducerLike>(
  flowProducer: P,
  options: FlowTracingOptions = {},
): P {
  assertClient('flowProducer', flowProducer, 'a BullMQ FlowProducer', ['add']);
  // A Queue has an `add` too (of one job, not a tree): wrapped as a flow producer, nothing it added
  // was traced. A FlowProducer never has `getJob`.
  if (typeof (flowProducer as { getJob?: unknown }).getJob === 'function') {
    throw new TypeError(
      `Expected \`flowProducer\` to be a BullMQ FlowProducer, got ${describeKind(flowProducer)} (wrap it with traceQueue)`,
    );
  }
  // Options are validated also when the flow producer was wrapped before (they are then ignored).
  const state = producerState(flowProducer, options, 'traceFlowProducer');
  const existing = existingWrapper(flowProducer);
  if (existing) return existing;
  const { instr } = state;

  const traced = (
    roots: readonly FlowNode[],
    destination: string | undefined,
    call: (copies: FlowNode[]) => Promise<unknown>,
  ): Promise<unknown> => {
    const parent = contextApi.active();
    const links = callerLinks(roots);
    const flowPrefix = producerPrefix(flowProducer);
    const send = startClientSpan(
      instr,
      state.templates.of(state.createSpans ? 'sendClient' : 'send').get(destination),
      parent,
      links ? { links } : undefined,
    );
    const sendContext = send ? trace.setSpan(parent, send) : parent;
    // One operation owns the send span and every create span (pushed as nodes are copied, inside
    // the operation, so a synchronous throw still ends them all).
    const spans: (Span | undefined)[] = [send];
    // The callers' own contexts of nodes that carry one, by their index in `spans` (no create span).
    const owned = new Map<number, SpanContext>();
    let nodes = 0;
    const operation = new Operation(instr, spans, sendMetric(state, destination, 0));
    return operation.run(
      () => {
        const copies = roots.map((node) => {
          nodes += countNodes(node);
          return copyNode(state, node, flowPrefix, sendContext, spans, owned);
        });
        operation.setCount(nodes);
        if (send?.isRecording()) setSpanAttributes(send, { [ATTR_MESSAGING_BATCH_MESSAGE_COUNT]: nodes });
        return contextApi.with(sendContext, () => call(copies));
      },
      state.createSpans
        ? (result) => {
            // Job ids, in the same depth-first order the create spans were started.
            const jobs: unknown[] = [];
            for (const node of Array.isArray(result) ? result : [result])
              collectJobs(node as JobNodeShape, jobs);
            setJobIds(spans.slice(1), jobs);
          }
        : undefined,
    );
  };

  const add: Interceptor<P> = (raw, [flow, opts]) => {
    if (!flow || typeof flow !== 'object') return (raw.add as AsyncMethod).call(raw, flow, opts);
    const root = flow as FlowNode;
    const destination = typeof root.queueName === 'string' ? root.queueName : undefined;
    return traced([root], destination, (copies) => (raw.add as AsyncMethod).call(raw, copies[0], opts));
  };
  const addBulk: Interceptor<P> = (raw, [flows]) => {
    const bulk = (raw as unknown as { addBulk: AsyncMethod }).addBulk;
    if (!Array.isArray(flows)) return bulk.call(raw, flows);
    return traced(flows as FlowNode[], undefined, (copies) => bulk.call(raw, copies));
  };
  // Listeners added to the traced flow producer get it as `this`, as without hoptrace.
  return interceptMethods(flowProducer, { add, addBulk }, { listeners: {} });
}

function countNodes(node: FlowNode): number {
  if (!node || typeof node !== 'object') return 0;
  let n = 1;
  if (Array.isArray(node.children)) for (const child of node.children) n += countNodes(child as FlowNode);
  return n;
}

/**
 * The links from a flow's send span to the contexts its nodes already carry (the caller's own), in
 * depth-first order, at most {@link MAX_CHILD_LINKS}. Never throws: a tree that cannot be read is
 * read again (and its error raised) when it is copied.
 */
function callerLinks(roots: readonly FlowNode[]): Link[] | undefined {
  let links: Link[] | undefined;
  const visit = (node: FlowNode): void => {
    if (!node || typeof node !== 'object' || (links?.length ?? 0) >= MAX_CHILD_LINKS) return;
    const caller = readJobContext(node.opts).caller;
    if (caller) {
      links ??= [];
      links.push({ context: caller });
    }
    if (Array.isArray(node.children)) for (const child of node.children) visit(child as FlowNode);
  };
  try {
    for (const root of roots) visit(root);
  } catch {
    // A getter that throws: the copy raises it.
  }
  return links;
}

/**
 * The flow producer's `opts.prefix`, read once per call (`null`, which names no prefix BullMQ would
 * use the same way in every version, when reading it throws).
 */
function producerPrefix(flowProducer: FlowProducerLike): unknown {
  try {
    return (flowProducer.opts as { prefix?: unknown } | undefined)?.prefix;
  } catch {
    return null;
  }
}

/**
 * Copies one node (depth first). With create spans, starts its create span under the flow's send
 * span (none for a node carrying the caller's own context, recorded in `owned`) and lists its direct
 * children's creation contexts in its own carrier (`flowPrefix`, the flow producer's `opts.prefix`,
 * for a node that names no prefix of its own).
 */
function copyNode(
  state: ProducerState,
  node: FlowNode,
  flowPrefix: unknown,
  sendContext: Context,
  creates: (Span | undefined)[],
  owned: Map<number, SpanContext>,
): FlowNode {
  if (!node || typeof node !== 'object') return node;
  let context = sendContext;
  const parsed = readJobContext(node.opts);
  if (state.createSpans && parsed.caller) {
    // The node keeps the caller's context: a create span of its own would be carried by nothing.
    owned.set(creates.length, parsed.caller);
    creates.push(undefined);
  } else if (state.createSpans) {
    const { instr } = state;
    const create = startClientSpan(
      instr,
      state.templates.of('create').get(typeof node.queueName === 'string' ? node.queueName : undefined),
      sendContext,
    );
    creates.push(create);
    if (create?.isRecording()) setSpanAttributes(create, jobAttributesOf(node, {}), instr.legacyAttributes);
    if (create) context = trace.setSpan(sendContext, create);
  }
  if (!Array.isArray(node.children)) return { ...node, opts: optionsWithContext(node.opts, context, parsed) };
  const firstChild = creates.length;
  const children = (node.children as FlowNode[]).map((child) =>
    copyNode(state, child, flowPrefix, sendContext, creates, owned),
  );
  if (!state.createSpans) return { ...node, opts: optionsWithContext(node.opts, context, parsed), children };
  // The parent lists its direct children's creation contexts so its processing can link to them.
  const carriers: Record<string, string>[] = [];
  let index = firstChild;
  for (const child of node.children as FlowNode[]) {
    const childSpan = creates[index];
    const caller = owned.get(index);
    if (carriers.length < MAX_CHILD_LINKS) {
      // The span context alone (a link needs no baggage): the list must fit the metadata limit.
      if (childSpan?.isRecording())
        carriers.push(injectContextUnchecked(trace.setSpan(ROOT_CONTEXT, childSpan)));
      else if (caller) carriers.push(injectContextUnchecked(trace.setSpanContext(ROOT_CONTEXT, caller)));
    }
    index += countNodes(child);
  }
  const owner =
    carriers.length > 0 && !carriesOwnContext(node.opts) ? parentIdentity(node, flowPrefix) : undefined;
  const opts = owner
    ? withChildCarriers(node.opts, context, carriers, owner)
    : optionsWithContext(node.opts, context, parsed);
  return { ...node, opts, children };
}

/**
 * The job a parent node's child list names (so a copy of its metadata elsewhere links to none of its
 * children): the key prefix BullMQ adds it under, its queue, and its `jobId` when the node gives one.
 * A node without one is named by its prefix and queue alone: BullMQ gives it a random id only as it
 * adds it, and hoptrace does not choose that id itself (set in its options, `job.opts.jobId` would be
 * stored with the job, and a copy of those options, `add(job.name, job.data, job.opts)`, would be
 * taken for the same job, not added). `undefined` (no child list) for a node BullMQ would give
 * another id (a `jobId` that is not a string), no queue, or a prefix that is not a string.
 */
function parentIdentity(node: FlowNode, flowPrefix: unknown): ListingParent | undefined {
  if (typeof node.queueName !== 'string') return undefined;
  const prefix = nodePrefix(node, flowPrefix);
  if (prefix === undefined) return undefined;
  const given = (node.opts as { jobId?: unknown } | undefined)?.jobId;
  if (typeof given === 'string' && given !== '') return { prefix, queue: node.queueName, id: given };
  // BullMQ takes any falsy `jobId` as none (`opts.jobId || randomUUID()`).
  return given ? undefined : { prefix, queue: node.queueName };
}

/**
 * The key prefix BullMQ adds a node under, as its `FlowProducer` resolves it: the node's `prefix`
 * unless empty, else the flow producer's `opts.prefix`, else `'bull'` (BullMQ 5 sets that default in
 * the flow producer's options, BullMQ 6 in its Redis backend). `undefined` for a prefix that is not a
 * string (BullMQ versions differ on what they make of one).
 */
function nodePrefix(node: FlowNode, flowPrefix: unknown): string | undefined {
  const prefix = node.prefix || flowPrefix;
  if (prefix === undefined) return 'bull';
  return typeof prefix === 'string' ? prefix : undefined;
}

function collectJobs(node: JobNodeShape | undefined, jobs: unknown[]): void {
  if (!node || typeof node !== 'object') return;
  jobs.push(node.job);
  if (Array.isArray(node.children)) {
    for (const child of node.children) collectJobs(child as JobNodeShape, jobs);
  }
}
