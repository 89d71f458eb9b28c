export {
  DuplicateEventIdError,
  WrongExpectedVersionError,
  isDuplicateEventIdError,
  isWrongExpectedVersionError,
} from './eventStore.js';
export type {
  AppendOptions,
  AppendResult,
  BatchAppendResult,
  EventData,
  EventStore,
  ExpectedRevision,
  ReadAllOptions,
  ReadStreamOptions,
  RecordedEvent,
  StreamAppend,
  SubscribeOptions,
  SubscriptionFilter,
} from './eventStore.js';
export { InMemoryEventStore } from './inMemoryEventStore.js';
export type { InMemoryEventStoreOptions } from './inMemoryEventStore.js';
export { SqliteEventStore } from './sqlite/sqliteEventStore.js';
export type { SqliteEventStoreMetrics, SqliteEventStoreOptions } from './sqlite/sqliteEventStore.js';
export type { Synchronous } from './sqlite/schema.js';
export { openEventStore } from './openEventStore.js';
export type { OpenEventStoreOptions } from './openEventStore.js';
