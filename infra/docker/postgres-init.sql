-- Two databases on one server, as two event-store shards (DATABASE_URL lists both).
CREATE DATABASE chat_shard_0;
CREATE DATABASE chat_shard_1;
