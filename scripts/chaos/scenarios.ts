import type { Load } from './load.js';
import type { PrivateServices, RoleProcessName, Topology } from './topology.js';

/**
 * The faults, one per scenario. `inject` starts while the clients send and resolves at the
 * fault's end: the process back (ready) or the dependency back (started again), or SIGCONT.
 * `gateways` names the gateway processes the fault hits: only their clients may reconnect.
 */

export type FaultContext = { topology: Topology; services: PrivateServices; load: Load; log: (line: string) => void };

export type Scenario = {
  readonly name: string;
  readonly description: string;
  readonly gateways: readonly RoleProcessName[];
  inject(ctx: FaultContext): Promise<void>;
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long a crashed process stays down before it is started again (an operator noticing it). */
const DOWN_MS = 1_000;

function kill(name: string, role: RoleProcessName, why: string): Scenario {
  return {
    name,
    description: `SIGKILL of the ${role} process (${why}); started again ${DOWN_MS / 1000} s later with the same environment, as an operator would without a supervisor`,
    gateways: role.startsWith('gateway') ? [role] : [],
    async inject({ topology }) {
      await topology.kill(role);
      await sleep(DOWN_MS);
      await topology.start(role);
    },
  };
}

function pause(name: string, role: RoleProcessName, ms: number, why: string): Scenario {
  return {
    name,
    description: `SIGSTOP of the ${role} process for ${ms / 1000} s (${why}), then SIGCONT`,
    gateways: role.startsWith('gateway') ? [role] : [],
    async inject({ topology }) {
      topology.pause(role);
      await sleep(ms);
      topology.resume(role);
    },
  };
}

export const SCENARIOS: readonly Scenario[] = [
  kill('kill-api', 'api', 'REST: registration, history, discovery of the WebSocket URL'),
  kill('kill-projector', 'projector', 'read models: history, inbox, memberships'),
  kill('kill-relay', 'relay', 'store to JetStream: its shard leases (10 s) outlive it'),
  kill('kill-delivery', 'delivery', 'JetStream to the gateway nodes: its unacked batch is redelivered after ack_wait'),
  kill('kill-push', 'push', 'the push queue sender'),
  kill('kill-gateway', 'gateway-a', 'half the clients lose their socket and reconnect through the balancer'),
  {
    name: 'restart-postgres',
    description: 'fast shutdown of the private PostgreSQL cluster (both shards, every connection cut), started again 2.5 s later',
    gateways: [],
    async inject({ services }) {
      await services.postgres.stop();
      await sleep(2_500);
      await services.postgres.start();
    },
  },
  {
    name: 'restart-nats',
    description: 'SIGTERM of the private nats-server (JetStream store kept on disk), started again 2 s later',
    gateways: [],
    async inject({ services }) {
      await services.nats.stop();
      await sleep(2_000);
      await services.nats.start();
    },
  },
  {
    name: 'restart-redis',
    description: 'SIGTERM of the private redis-server (nothing on disk: every presence entry is gone), started again 2 s later',
    gateways: [],
    async inject({ services }) {
      await services.redis.stop();
      await sleep(2_000);
      await services.redis.start();
    },
  },
  pause('stop-relay', 'relay', 15_000, 'past its 10 s shard lease'),
  pause('stop-delivery', 'delivery', 35_000, "past JetStream's 30 s ack_wait and the gateways' 10 s delivery-feed deadline"),
  pause('stop-gateway', 'gateway-a', 45_000, "past the SDK's Ping deadline (a Ping every 30 s, 10 s for an answer: every client of the node gives up on it and reconnects through the balancer) and the 10 s delivery-feed deadline"),
  {
    name: 'kill-during-burst',
    description:
      'a burst of 5 sends from every client on gateway-a (the process that appends WebSocket sends and answers their SendAcks), SIGKILL of gateway-a 30 ms later while they are in flight; started again 1 s later',
    gateways: ['gateway-a'],
    async inject({ topology, load, log }) {
      const before = load.sends().length;
      const n = load.burst(0, 5);
      await sleep(30);
      await topology.kill('gateway-a');
      const burst = load.sends().slice(before, before + n);
      log(`burst of ${n} sends, ${burst.filter((s) => s.ack !== null).length} of them acknowledged when gateway-a was killed`);
      await sleep(DOWN_MS);
      await topology.start('gateway-a');
    },
  },
];
