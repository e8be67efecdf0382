/** What the command side needs to know about accounts (users live in a plain table). */
export interface UserDirectory {
  /** The subset of `ids` that are registered users. */
  existing(ids: string[]): Promise<Set<string>>;
}

/** What a read model recorded of a user in one conversation, as of the conversation's `version` there. */
export type RecordedMembership = {
  /** The conversation's version the read model has applied (it may lag the store). */
  version: number;
  /** `active`: a member; `former`: was one (removed or left); `never`: the user has never been one. */
  membership: 'active' | 'former' | 'never';
};

/**
 * Who belongs to which conversation, as a read model knows it: the command side asks it before it
 * reads a stream for someone who may be a stranger, so a stranger costs a lookup, not a replay. It
 * may lag the store; the command side compares its `version` with the stream's before trusting a
 * "never".
 */
export interface MembershipIndex {
  /** Per conversation the read model knows (ids it does not know are absent), the user's membership. */
  memberships(userId: string, conversationIds: readonly string[]): Promise<Map<string, RecordedMembership>>;
}
