/**
 * Which way the harness gets its brokers. `auto` is the full resolution order (environment, loopback,
 * Testcontainers, local provisioning); `testcontainers` starts every broker with Testcontainers and
 * nothing else, so a run proves the container path even on a machine where brokers already listen.
 */
export type BrokerRoute = 'auto' | 'testcontainers';

/** The environment variable that names the route; unset or empty means `auto`. */
export const BROKER_ROUTE_ENV = 'HOPTRACE_BROKERS';

const ROUTES: readonly BrokerRoute[] = ['auto', 'testcontainers'];

/**
 * The route asked for by {@link BROKER_ROUTE_ENV}. An unknown value throws rather than falling back to
 * `auto`: a typo would otherwise make a container lane silently test the loopback brokers.
 */
export function brokerRoute(env: NodeJS.ProcessEnv = process.env): BrokerRoute {
  const raw = env[BROKER_ROUTE_ENV]?.trim().toLowerCase() ?? '';
  if (raw === '') return 'auto';
  if ((ROUTES as readonly string[]).includes(raw)) return raw as BrokerRoute;
  throw new Error(
    `${BROKER_ROUTE_ENV}=${JSON.stringify(env[BROKER_ROUTE_ENV])} is not a route; use one of: ${ROUTES.join(', ')}`,
  );
}

/** One step of the resolution order. */
export type ResolutionStep = 'env' | 'loopback' | 'testcontainers' | 'provision';

/** The steps a route tries, in order. */
export function resolutionSteps(route: BrokerRoute): ResolutionStep[] {
  return route === 'testcontainers' ? ['testcontainers'] : ['env', 'loopback', 'testcontainers', 'provision'];
}
