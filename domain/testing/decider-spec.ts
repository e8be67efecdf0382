import { expect } from 'vitest';

/**
 * Given / when / then for deciders (after Emmett's DeciderSpecification):
 *   spec.given([...events]).when(command).then([...events])
 *   spec.given([...events]).when(command).thenThrows(code)
 */
export type Decider<C, E, S> = {
  decide(command: C, state: S): E[];
  evolve(state: S, event: E): S;
  initialState(): S;
};

export function deciderSpecification<C, E, S>(decider: Decider<C, E, S>) {
  return {
    given(events: E[]) {
      return {
        when(command: C) {
          const run = () => decider.decide(command, events.reduce((state, event) => decider.evolve(state, event), decider.initialState()));
          return {
            // biome-ignore lint/suspicious/noThenProperty: the given/when/then builder; never awaited
            then(expected: E[]) {
              expect(run()).toEqual(expected);
            },
            thenNothingHappens() {
              expect(run()).toEqual([]);
            },
            thenThrows(code: string) {
              let error: unknown;
              try {
                run();
              } catch (e) {
                error = e;
              }
              expect(error, 'expected the decider to refuse the command').toBeDefined();
              expect((error as { code?: string }).code).toBe(code);
            },
          };
        },
      };
    },
  };
}
