/**
 * The members of one entry of the gateway's indexes (a user's connections on this node, those
 * that have a user as a contact): a plain array while there are few, a Set from SMALL on.
 *
 * Most entries hold a few connections (a user's devices, the contacts of a user on this node), and
 * a JavaScript Set of one or two members still allocates a hash table for four: with a Set per
 * entry, a user in 20 conversations cost the node about 14 Sets per connection, more than half of
 * the connection's memory (BENCHMARKS.md, idle connections). An array of n costs 8n bytes plus
 * about 50; a Set about twice that from its first member, so arrays stay until 64 (a lookup scans
 * at most 63 pointers; a change copies them).
 *
 * Arrays are allocated to their exact size and never changed in place: add and delete return a
 * new one, so a caller iterating the old one (a delivery whose send closes a connection, which
 * then leaves the index) sees a stable list. Sets tolerate changes during iteration by themselves.
 */
export type Members<T> = readonly T[] | Set<T>;

/** From this many members on, an entry is a Set (lookups in O(1) for big groups on one node). */
export const SMALL = 64;

export function hasMember<T>(members: Members<T>, member: T): boolean {
  return members instanceof Set ? members.has(member) : members.includes(member);
}

/** `members` with `member` (the caller checked it was not there). */
export function addMember<T>(members: Members<T>, member: T): Members<T> {
  if (members instanceof Set) return members.add(member);
  if (members.length + 1 >= SMALL) return new Set(members).add(member);
  // concat allocates exactly what it needs; a spread ([...members, member]) grows like push and
  // leaves room for 17 (a 2-member array then takes 208 bytes instead of 72).
  return members.concat([member]);
}

export function deleteMember<T>(members: Members<T>, member: T): Members<T> {
  if (members instanceof Set) {
    members.delete(member);
    return members;
  }
  const at = members.indexOf(member);
  return at < 0 ? members : members.slice(0, at).concat(members.slice(at + 1));
}

export function memberCount<T>(members: Members<T>): number {
  return members instanceof Set ? members.size : members.length;
}
