import { type Instrumentation, type SpanOperation, SpanTemplates } from '@hoptrace/core/adapter';
import { type Attributes, SpanKind } from '@opentelemetry/api';

const OPERATIONS = {
  send: { type: 'send', name: 'send' },
  sendClient: { type: 'send', name: 'send', kind: SpanKind.CLIENT },
  create: { type: 'create', name: 'create' },
  schedule: { type: 'create', name: 'schedule' },
  process: { type: 'process', name: 'process' },
} as const satisfies Record<string, SpanOperation>;

/** Which operation a template is for. */
export type BullmqOperation = keyof typeof OPERATIONS;

/** The span templates of one BullMQ wrapper, per operation and queue (bounded by core). */
export class BullmqTemplates {
  readonly #instr: Instrumentation;
  readonly #server: Attributes;
  readonly #byOperation = new Map<BullmqOperation, SpanTemplates>();

  /** @param server - `server.address` / `server.port` of the Redis connection, when known. */
  constructor(instr: Instrumentation, server: Attributes) {
    this.#instr = instr;
    this.#server = server;
  }

  /** The templates for `operation` (queue -> template). */
  of(operation: BullmqOperation): SpanTemplates {
    let templates = this.#byOperation.get(operation);
    if (!templates) {
      templates = new SpanTemplates(
        this.#instr.system,
        OPERATIONS[operation],
        this.#server,
        this.#instr.legacyAttributes,
      );
      this.#byOperation.set(operation, templates);
    }
    return templates;
  }
}
