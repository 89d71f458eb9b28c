import { auditIndex } from '../../domain/projections/auditIndex.js';
import { clusterHistory } from '../../domain/projections/clusterHistory.js';
import { fireIndex } from '../../domain/projections/fireIndex.js';
import { statistics, type StatisticsOptions } from '../../domain/projections/statistics.js';
import { taskBoard } from '../../domain/projections/taskBoard.js';
import type { CompiledConfig } from '../config/config.js';
import type { RegisteredModel } from './readModelDb.js';

export type ReadModelsOptions = {
  /** How long the fire index keeps attempts and tick gaps; null: as long as the log. */
  firesKeepMs: number | null;
  statistics: StatisticsOptions;
};

/** The options a node's configuration gives its read models (`KAIROS_FIRES_RETENTION`, `KAIROS_STATS_RETENTION_*`). */
export const readModelsOptionsOf = (settings: NonNullable<CompiledConfig['readSide']>): ReadModelsOptions => ({
  firesKeepMs: settings.firesKeepMs,
  statistics: { keepMs: settings.statsKeepMs },
});

/**
 * Every read model the read side keeps, with the indexes its queries use. Adding a model is one
 * reducer (domain/projections), its row schemas in it (and a `merge` for a table whose rows gather
 * several streams), and one entry here.
 */
export const readModels = (options: ReadModelsOptions): RegisteredModel[] => [
  {
    model: taskBoard(),
    indexes: { tasks: [['position'], ['status', 'taskId'], ['owner'], ['nextFireAt'], ['lastFireAt'], ['topic']] },
  },
  {
    model: fireIndex({ keepMs: options.firesKeepMs }),
    indexes: {
      // Each index costs every insert (the rebuild rate): a node filter rides on these with a residual check.
      attempts: [
        ['firedAt', 'position'],
        ['taskId', 'firedAt', 'position'],
        ['status', 'firedAt', 'position'],
      ],
      gaps: [['taskId', 'position'], ['at']],
    },
  },
  {
    model: auditIndex(),
    indexes: {
      entries: [
        ['at', 'taskId', 'revision'],
        ['actor', 'at'],
        ['action', 'at'],
      ],
    },
  },
  {
    model: clusterHistory(),
    indexes: {
      entries: [
        ['kind', 'position'],
        ['node', 'position'],
        ['taskId', 'position'],
      ],
    },
  },
  // Keyed by task then time: a series (per task, or `*`) is one range of the key.
  { model: statistics(options.statistics) },
];

/** The names `kairos replay --model` accepts. */
export const READ_MODEL_NAMES = ['board', 'fires', 'audit', 'cluster', 'stats'] as const;
