/** What the command side needs to know about accounts (users live in a plain table). */
export interface UserDirectory {
  /** The subset of `ids` that are registered users. */
  existing(ids: string[]): Promise<Set<string>>;
}
