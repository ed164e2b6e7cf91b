// `./dev kafka start|stop`: a local Kafka for development that outlives the command.
// `./dev containers setup`: `containers-images` builds the local broker images (see images.ts) and
// prints `HOPTRACE_<KIND>_IMAGE=<ref>` lines on stdout for the shell to export; progress goes to stderr.
// `./dev containers test`: `containers-leftovers` removes (and counts) containers a run left behind.
import { readFileSync, rmSync } from 'node:fs';
import { kafkaStateFile, startLocalKafka } from './kafka-local.ts';

const command = process.argv[2];
const state = kafkaStateFile(9092);

if (command === 'kafka-start') {
  const kafka = await startLocalKafka({ detached: true, log: (line) => console.log(line) });
  console.log(
    `Kafka ${kafka.version} is ready on ${kafka.brokers.join(',')} (pid ${kafka.pid}); stop it with ./dev kafka stop`,
  );
  process.exit(0);
} else if (command === 'kafka-stop') {
  try {
    const { pid, home } = JSON.parse(readFileSync(state, 'utf8')) as { pid: number; home: string };
    process.kill(pid, 'SIGTERM');
    rmSync(state, { force: true });
    console.log(`stopped Kafka (pid ${pid}); its data was in ${home}`);
  } catch (error) {
    console.log(`no Kafka started by ./dev kafka start is running (${(error as Error).message})`);
  }
} else if (command === 'containers-images') {
  const { ensureImages } = await import('./images.ts');
  const { IMAGE_ENV } = await import('./containers.ts');
  const images = await ensureImages((line) => process.stderr.write(`containers: ${line}\n`));
  for (const [kind, ref] of Object.entries(images)) {
    process.stdout.write(`${IMAGE_ENV[kind as keyof typeof IMAGE_ENV]}=${ref}\n`);
  }
} else if (command === 'containers-leftovers') {
  // After a run: any harness container whose owner is gone was left behind by that run's teardown.
  const { removeStaleContainers } = await import('./containers.ts');
  const removed = await removeStaleContainers((line) => process.stderr.write(`containers: ${line}\n`));
  process.exit(removed === 0 ? 0 : 3);
} else {
  console.error('usage: cli.ts kafka-start|kafka-stop|containers-images|containers-leftovers');
  process.exit(2);
}
