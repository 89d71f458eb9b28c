// EventStoreDB protocol stand-in for tests (not EventStoreDB): see README.md beside this file.
export { startEsdbStandIn, type EsdbStandIn, type EsdbStandInOptions } from './standIn.js';
