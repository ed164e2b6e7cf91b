import { messageLink } from '@hoptrace/core/adapter';
import { type SpanContext, TraceFlags } from '@opentelemetry/api';
import { describe, expect, it } from 'vitest';

const context: SpanContext = {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
};

describe('messageLink', () => {
  it("carries the message's attributes, older names too with legacy, and none when there are none", () => {
    expect(messageLink(context, { 'kafka.offset': 7, 'kafka.message.key': 'k' })).toEqual({
      context,
      attributes: { 'kafka.offset': 7, 'kafka.message.key': 'k' },
    });
    expect(messageLink(context, { 'kafka.offset': 7, 'rabbitmq.message.delivery_tag': 3 }, true)).toEqual({
      context,
      attributes: {
        'kafka.offset': 7,
        'messaging.kafka.offset': 7,
        'messaging.kafka.message.offset': 7,
        'rabbitmq.message.delivery_tag': 3,
        'messaging.rabbitmq.message.delivery_tag': 3,
      },
    });
    expect(messageLink(context, {}, true)).toEqual({ context });
    expect('attributes' in messageLink(context, {})).toBe(false);
  });
});
