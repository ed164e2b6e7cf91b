/** The members of a job {@link jobPrefix} reads (a BullMQ `Job`, or the job a sandboxed processor receives). */
export interface PrefixedJobLike {
  queueName?: unknown;
  queueQualifiedName?: unknown;
  prefix?: unknown;
}

/**
 * The BullMQ key prefix the job was read under (the worker's `prefix`, default `'bull'`), or
 * `undefined` when the job does not tell it. Read from the job, not from the worker's options
 * (BullMQ 6 leaves `worker.opts.prefix` unset by default and applies `'bull'` in its Redis backend):
 *
 * - `queueQualifiedName` (`{prefix}:{queue}`), which a `Job` carries in a worker and BullMQ 6 hands a
 *   sandboxed processor too; a qualified name that is the queue name alone (a backend without key
 *   prefixes, such as BullMQ 6's PostgreSQL backend) tells no prefix;
 * - otherwise `prefix`, which BullMQ 5 hands a sandboxed processor (its queue's `opts.prefix`).
 *
 * Never throws (a getter that throws tells no prefix).
 */
export function jobPrefix(job: PrefixedJobLike): string | undefined {
  try {
    const queue = job.queueName;
    const qualified = job.queueQualifiedName;
    if (typeof queue === 'string' && typeof qualified === 'string') {
      if (qualified === queue) return undefined;
      if (qualified.length > queue.length && qualified.endsWith(`:${queue}`))
        return qualified.slice(0, qualified.length - queue.length - 1);
    }
    const prefix = job.prefix;
    return typeof prefix === 'string' ? prefix : undefined;
  } catch {
    return undefined;
  }
}
