// `node remove-containers.ts <id>...`: force-removes containers through the runtime Testcontainers
// finds (DOCKER_HOST and friends). Run as a child by container-owner.ts when a run ends abruptly.
import { getContainerRuntimeClient } from 'testcontainers';

const ids = process.argv.slice(2);
const client = await getContainerRuntimeClient();
const results = await Promise.allSettled(
  ids.map((id) => client.container.getById(id).remove({ force: true, v: true })),
);
let failed = 0;
results.forEach((result, i) => {
  // A 404 means the container is already gone, which is what we wanted.
  if (result.status === 'rejected' && (result.reason as { statusCode?: number }).statusCode !== 404) {
    failed += 1;
    process.stderr.write(`could not remove container ${ids[i]}: ${String(result.reason)}\n`);
  }
});
process.exit(failed === 0 ? 0 : 1);
