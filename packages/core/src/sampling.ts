import { type Context, type SpanContext, TraceFlags, type TracerProvider, trace } from '@opentelemetry/api';

/**
 * What a wrapper does for a message whose parent context is valid but not sampled:
 * - `auto` (default): learn it from the tracer. The first such message gets a span; if the tracer
 *   did not record it (the SDK's default `ParentBased` sampler never records a child of an unsampled
 *   parent), later ones get none, until the global tracer provider changes, when hoptrace learns
 *   again. Right for `ParentBased(...)`, `AlwaysOn` and `AlwaysOff` alike.
 * - `skip`: never build a span for such a message.
 * - `span`: always start one (for a custom sampler that may record children of unsampled parents).
 *
 * Without a span, the handler runs in the message's own (remote, unsampled) context, so the trace
 * id still flows to every downstream send, whose parent is then the upstream producer's span.
 */
export type UnsampledMode = 'auto' | 'skip' | 'span';

/** The modes, for validation and docs. */
export const UNSAMPLED_MODES: readonly UnsampledMode[] = ['auto', 'skip', 'span'];

/** Decides, per wrapper, whether children of unsampled parents get spans (see {@link UnsampledMode}). */
export class UnsampledPolicy {
  readonly #mode: UnsampledMode;
  readonly #provider: TracerProvider | undefined;
  #learnedFor: object | undefined;
  #skip = false;

  /**
   * @param mode - see {@link UnsampledMode}.
   * @param provider - the wrapper's own tracer provider, when given in its options (else the global one).
   */
  constructor(mode: UnsampledMode, provider: TracerProvider | undefined) {
    this.#mode = mode;
    this.#provider = provider;
  }

  /** True when a child of a valid, unsampled parent should get no span. */
  skip(): boolean {
    if (this.#mode !== 'auto') return this.#mode === 'skip';
    return this.#skip && this.#learnedFor === this.#currentProvider();
  }

  /** Records whether the tracer recorded a span whose parent was unsampled (`auto` mode only). */
  learn(recording: boolean): void {
    if (this.#mode !== 'auto') return;
    this.#learnedFor = this.#currentProvider();
    this.#skip = !recording;
  }

  /** The provider spans actually go to: the global proxy's delegate, or the explicit one. */
  #currentProvider(): object {
    const provider = this.#provider ?? trace.getTracerProvider();
    return (provider as { getDelegate?: () => TracerProvider }).getDelegate?.() ?? provider;
  }
}

/** The parent span context in `context` when it is valid and not sampled; else `undefined`. */
export function unsampledParent(context: Context): SpanContext | undefined {
  const spanContext = trace.getSpanContext(context);
  if (!spanContext || (spanContext.traceFlags & TraceFlags.SAMPLED) !== 0) return undefined;
  return trace.isSpanContextValid(spanContext) ? spanContext : undefined;
}
