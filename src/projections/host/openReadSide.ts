import { pino, type Logger } from 'pino';
import { systemClock, type Clock } from '../../clock/clock.js';
import type { CompiledConfig } from '../../config/config.js';
import type { EventStore } from '../../store/eventStore.js';
import { ReadSide } from '../readSide.js';
import { readModels, readModelsOptionsOf } from '../readModels.js';
import { ChildReadSide } from './childReadSide.js';
import { inProcessReadSide } from './inProcessReadSide.js';
import type { ReadSidePort } from './readSidePort.js';

/**
 * The node's read side as configured: none (`KAIROS_READ_SIDE=off`), in-process for an in-memory log
 * (no other process can read it), or a child process for a log in a file or in EventStoreDB. The child
 * starts in the background: queries made before it is up wait for it.
 */
export const openReadSide = (
  config: CompiledConfig,
  store: EventStore,
  options: { clock: Clock; logger: Logger },
): ReadSidePort | null => {
  const settings = config.readSide;
  if (!settings) return null;
  const models = readModelsOptionsOf(settings);
  if (config.store.startsWith('memory:')) return inProcessReadSide({ store, models: readModels(models), ...options });
  const child = new ChildReadSide({
    init: { store: config.store, file: settings.db, models, logLevel: config.logLevel, nodeId: config.nodeId },
    ...options,
  });
  child.start().catch((err: unknown) => options.logger.error({ err }, 'the read side did not start'));
  return child;
};

/**
 * The read side of a log no node is running on (`kairos replay` with the node down, the benchmark
 * timing it): the configured models over the configured read database, not following the log,
 * warnings on stderr (stdout carries the summary, or the JSON a script reads). A rebuild uses two
 * threads, the second opening the log at `url`.
 */
export const openOfflineReadSide = (
  store: EventStore,
  url: string,
  settings: NonNullable<CompiledConfig['readSide']>,
): ReadSide =>
  ReadSide.open({
    store,
    file: settings.db,
    models: readModels(readModelsOptionsOf(settings)),
    apart: { store: url, models: readModelsOptionsOf(settings) },
    clock: systemClock,
    logger: pino({ level: 'warn' }, pino.destination(2)),
    sink: { send: () => undefined, end: () => undefined },
  });
