import { type Instrumentation, type SpanOperation, SpanTemplates } from '@hoptrace/core/adapter';
import { SpanKind } from '@opentelemetry/api';
import type { ClientInfo } from './client-info.ts';

/** The operations a Kafka wrapper starts spans for. */
const OPERATIONS = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  create: { type: 'create', name: 'create' },
  process: { type: 'process', name: 'process' },
  sendOffsets: { type: 'settle', name: 'send_offsets' },
  commit: { type: 'settle', name: 'commit_transaction' },
  abort: { type: 'settle', name: 'abort_transaction' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a template is for. */
export type KafkaOperation = keyof typeof OPERATIONS;

/**
 * The span templates of one Kafka wrapper, per operation and topic. Rebuilt when the client info
 * learns something new (client id, broker, group), so spans always start with what is known.
 */
export class KafkaTemplates {
  readonly #instr: Instrumentation;
  readonly #info: ClientInfo;
  readonly #withGroup: boolean;
  #version = -1;
  #byOperation = new Map<KafkaOperation, SpanTemplates>();

  constructor(instr: Instrumentation, info: ClientInfo, withGroup: boolean) {
    this.#instr = instr;
    this.#info = info;
    this.#withGroup = withGroup;
  }

  /** The templates for `operation` (topic -> template). */
  of(operation: KafkaOperation): SpanTemplates {
    if (this.#version !== this.#info.version) {
      this.#version = this.#info.version;
      this.#byOperation = new Map();
    }
    let templates = this.#byOperation.get(operation);
    if (!templates) {
      templates = new SpanTemplates(
        this.#instr.system,
        OPERATIONS[operation],
        this.#info.attributes(this.#withGroup),
        this.#instr.legacyAttributes,
      );
      this.#byOperation.set(operation, templates);
    }
    return templates;
  }
}
