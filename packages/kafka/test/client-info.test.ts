import { ATTR_MESSAGING_CLIENT_ID, ATTR_SERVER_ADDRESS, ATTR_SERVER_PORT } from '@hoptrace/core/adapter';
import { traceProducer } from '@hoptrace/kafka';
import { onlySpan, useTestTracing } from '@hoptrace/test-kit';
import { type Span, trace } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Producer, ProducerRecord, RequestEvent } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ClientInfo, MAX_SPANS_AWAITING_CLIENT_INFO } from '../src/client-info.ts';
import { resolveKafkaSettings } from '../src/options.ts';
import { fakeProducer } from './helpers.ts';

const tracing = useTestTracing();

type RequestListener = (event: RequestEvent) => void;

/** A request event as kafkajs emits it (only the fields the wrapper reads). */
function requestEvent(clientId: string, broker: string): RequestEvent {
  return { payload: { clientId, broker } } as RequestEvent;
}

/** A subscription to a fake request emitter: `emit` calls the listener while it is subscribed. */
function requestEmitter() {
  let listener: RequestListener | undefined;
  let subscriptions = 0;
  return {
    subscribe(l: RequestListener): () => void {
      subscriptions++;
      listener = l;
      return () => {
        listener = undefined;
      };
    },
    emit(event: RequestEvent): void {
      listener?.(event);
    },
    get listening(): boolean {
      return listener !== undefined;
    },
    get subscriptions(): number {
      return subscriptions;
    },
  };
}

function finished(name: string): ReadableSpan {
  return onlySpan(tracing.current.spans(), name);
}

describe('ClientInfo: spans started before the first request event', () => {
  it('a send whose own request brings the first event gets client id and server; later sends from the templates', async () => {
    const fake = fakeProducer();
    const emitter = requestEmitter();
    const send = fake.producer.send;
    // kafkajs emits the request event while the send's request is in flight (its span open).
    fake.producer.send = async (record: ProducerRecord) => {
      emitter.emit(requestEvent('from-event', 'broker-1:9093'));
      return send(record);
    };
    fake.producer.on = ((_event: string, listener: RequestListener) =>
      emitter.subscribe(listener)) as unknown as Producer['on'];
    const producer = traceProducer(fake.producer);
    await producer.send({ topic: 'first', messages: [{ value: 'a' }] });
    await producer.send({ topic: 'second', messages: [{ value: 'b' }] });
    const learned = {
      [ATTR_MESSAGING_CLIENT_ID]: 'from-event',
      [ATTR_SERVER_ADDRESS]: 'broker-1',
      [ATTR_SERVER_PORT]: 9093,
    };
    expect(finished('send first').attributes).toMatchObject(learned);
    expect(finished('send second').attributes).toMatchObject(learned);
    expect(emitter.listening).toBe(false);
  });

  it('completes the spans still open, leaves ended and non-recording ones alone, keeps what options gave', () => {
    const info = new ClientInfo(resolveKafkaSettings({ clientId: 'from-options' }), undefined);
    const emitter = requestEmitter();
    info.learn(emitter.subscribe);
    const tracer = trace.getTracer('test');
    const open = tracer.startSpan('open');
    const ended = tracer.startSpan('ended');
    const nonRecording = trace.wrapSpanContext(open.spanContext());
    info.completeWhenLearned([open, ended, nonRecording]);
    ended.end();
    emitter.emit(requestEvent('from-event', '[::1]:9094'));
    open.end();
    expect(finished('open').attributes).toEqual({
      [ATTR_MESSAGING_CLIENT_ID]: 'from-options',
      [ATTR_SERVER_ADDRESS]: '::1',
      [ATTR_SERVER_PORT]: 9094,
    });
    // Written after its end it would be a span misuse (the setup fails the test on one).
    expect(finished('ended').attributes).toEqual({});
    expect(info.version).toBe(1);
    expect(emitter.listening).toBe(false);
  });

  it('once learned, holds nothing', () => {
    const info = new ClientInfo(resolveKafkaSettings({}), undefined);
    const emitter = requestEmitter();
    info.learn(emitter.subscribe);
    emitter.emit(requestEvent('c', 'h:1'));
    const late = trace.getTracer('test').startSpan('late');
    info.completeWhenLearned(late);
    // A second event (were the listener still there) would not reach it either.
    emitter.emit(requestEvent('other', 'other:2'));
    late.end();
    expect(finished('late').attributes).toEqual({});
    expect(info.attributes()).toEqual({
      [ATTR_MESSAGING_CLIENT_ID]: 'c',
      [ATTR_SERVER_ADDRESS]: 'h',
      [ATTR_SERVER_PORT]: 1,
    });
  });

  it('does not listen (nor hold spans) when the options gave client id and broker', () => {
    const info = new ClientInfo(resolveKafkaSettings({ clientId: 'c', broker: 'h:1' }), undefined);
    const emitter = requestEmitter();
    info.learn(emitter.subscribe);
    expect(emitter.subscriptions).toBe(0);
    const span = trace.getTracer('test').startSpan('known');
    info.completeWhenLearned(span);
    span.end();
    expect(finished('known').attributes).toEqual({});
  });

  it(`holds at most ${MAX_SPANS_AWAITING_CLIENT_INFO} spans, dropping ended ones first`, () => {
    const info = new ClientInfo(resolveKafkaSettings({}), undefined);
    const emitter = requestEmitter();
    info.learn(emitter.subscribe);
    const tracer = trace.getTracer('test');
    const start = (name: string): Span => tracer.startSpan(name);
    // Full of spans that ended: a new one still gets in.
    const endedEarly = Array.from({ length: MAX_SPANS_AWAITING_CLIENT_INFO }, (_, i) => start(`early-${i}`));
    info.completeWhenLearned(endedEarly);
    for (const span of endedEarly) span.end();
    const kept = Array.from({ length: MAX_SPANS_AWAITING_CLIENT_INFO }, (_, i) => start(`kept-${i}`));
    info.completeWhenLearned(kept);
    // Full of open spans: past the cap, a span is not held.
    const overflow = start('overflow');
    info.completeWhenLearned(overflow);
    emitter.emit(requestEvent('c', 'h:1'));
    for (const span of [...kept, overflow]) span.end();
    const all = tracing.current.spans();
    const completed = all.filter((s) => s.attributes[ATTR_MESSAGING_CLIENT_ID] === 'c').map((s) => s.name);
    expect(completed.sort()).toEqual(kept.map((_, i) => `kept-${i}`).sort());
    expect(all).toHaveLength(2 * MAX_SPANS_AWAITING_CLIENT_INFO + 1);
  });
});
