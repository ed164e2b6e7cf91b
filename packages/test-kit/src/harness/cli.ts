// `./dev kafka start|stop`: a local Kafka for development that outlives the command.
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
} else {
  console.error('usage: ./dev kafka start|stop');
  process.exit(2);
}
