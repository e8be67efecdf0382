import { describe, expect, it } from 'vitest';
import { SMALL, addMember, deleteMember, hasMember, memberCount, type Members } from './members.js';

describe('index members (small arrays, Sets when many)', () => {
  it('adds, finds and deletes members, switching to a Set at SMALL', () => {
    let m: Members<number> = [];
    for (let i = 0; i < SMALL - 1; i++) m = addMember(m, i);
    expect(Array.isArray(m)).toBe(true);
    expect(memberCount(m)).toBe(SMALL - 1);
    m = addMember(m, 100);
    expect(m).toBeInstanceOf(Set);
    expect(memberCount(m)).toBe(SMALL);
    expect(hasMember(m, 100) && hasMember(m, 0) && !hasMember(m, 101)).toBe(true);
    m = deleteMember(m, 0);
    expect(hasMember(m, 0)).toBe(false);
    expect(memberCount(m)).toBe(SMALL - 1);
  });

  it('never changes an array in place: a list being iterated stays as it was', () => {
    const before: Members<string> = ['a', 'b', 'c'];
    const seen: string[] = [];
    let current: Members<string> = before;
    for (const x of before) {
      seen.push(x);
      current = deleteMember(current, x === 'a' ? 'c' : 'zz'); // a member leaves during the loop
      current = addMember(current, `${x}2`);
    }
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(before).toEqual(['a', 'b', 'c']);
    expect([...current]).toEqual(['a', 'b', 'a2', 'b2', 'c2']);
    expect(deleteMember(current, 'missing')).toBe(current);
  });
});
