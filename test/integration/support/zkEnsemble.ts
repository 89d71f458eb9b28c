import { afterAll, beforeAll } from 'vitest';
import { type Ensemble, type EnsembleOptions, startEnsemble } from '../../../scripts/zk/ensemble.js';

/**
 * Starts a private ZooKeeper ensemble (default 3 servers on free loopback ports) before the file's tests
 * and removes it after them. Without the Debian package every test of the file fails with
 * "ZooKeeper is not installed: run `apt-get install -y zookeeper` ..." — never a silent skip.
 */
export const useZkEnsemble = (options: EnsembleOptions = {}): { readonly ensemble: Ensemble } => {
  let ensemble: Ensemble | undefined;
  beforeAll(async () => {
    ensemble = await startEnsemble(options);
  });
  afterAll(async () => {
    await ensemble?.stop();
  });
  return {
    get ensemble(): Ensemble {
      if (!ensemble) throw new Error('the ZooKeeper ensemble is not running (did beforeAll fail?)');
      return ensemble;
    },
  };
};
