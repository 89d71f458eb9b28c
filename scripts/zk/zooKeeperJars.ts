import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** Where Debian's `zookeeper` package puts its jars. */
export const DEBIAN_JAVA_DIR = '/usr/share/java';

export const NOT_INSTALLED_MESSAGE =
  'ZooKeeper is not installed: run `apt-get install -y zookeeper` (Debian) — .ci/run does this';

/** Thrown when the ZooKeeper server jars are missing; the message says how to install them. */
export class ZooKeeperNotInstalledError extends Error {
  constructor(javaDir: string) {
    super(`${NOT_INSTALLED_MESSAGE} (looked for zookeeper.jar in ${javaDir})`);
    this.name = 'ZooKeeperNotInstalledError';
  }
}

/**
 * The class path that runs `QuorumPeerMain` from the Debian package. Debian's `zookeeper.jar` names its
 * dependencies (netty, jute, slf4j, ...) in its manifest's `Class-Path`, so two jars are enough.
 * `KAIROS_ZK_JAVA_DIR` points at another directory holding `zookeeper.jar` and `zookeeper-jute.jar`.
 */
export const zooKeeperClassPath = (javaDir = process.env['KAIROS_ZK_JAVA_DIR'] ?? DEBIAN_JAVA_DIR): string => {
  const jars = ['zookeeper.jar', 'zookeeper-jute.jar'].map((jar) => join(javaDir, jar));
  if (!jars.every((jar) => existsSync(jar))) throw new ZooKeeperNotInstalledError(javaDir);
  return jars.join(':');
};
