import type { Command } from 'commander';

type StartFlags = {
  port?: string;
  host?: string;
  dataDir?: string;
  nodeId?: string;
  store?: string;
  config?: string;
  logLevel?: string;
};

export const registerStart = (program: Command): void => {
  program
    .command('start')
    .description('run a scheduler node (embedded single node by default)')
    .option('--port <port>', 'API port (KAIROS_PORT, default 8080)')
    .option('--host <host>', 'API address (KAIROS_HOST, default 127.0.0.1)')
    .option('--data-dir <dir>', 'data directory (KAIROS_DATA_DIR, default ./data)')
    .option('--node-id <id>', 'node id (KAIROS_NODE_ID, default the host name)')
    .option('--store <url>', 'event store: sqlite:<file> | memory: (KAIROS_STORE)')
    .option('--config <file>', 'YAML or JSON config file (KAIROS_CONFIG)')
    .option('--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (KAIROS_LOG_LEVEL)')
    .action(async (flags: StartFlags) => {
      const [{ startKairos }, { compileConfig, readConfigFile }] = await Promise.all([
        import('../app/startKairos.js'),
        import('../config/config.js'),
      ]);
      const configFile = flags.config ?? process.env.KAIROS_CONFIG;
      const config = compileConfig({
        file: configFile ? readConfigFile(configFile) : {},
        env: process.env,
        flags: {
          port: flags.port,
          host: flags.host,
          dataDir: flags.dataDir,
          nodeId: flags.nodeId,
          store: flags.store,
          logLevel: flags.logLevel,
        },
      });
      const kairos = await startKairos(config);
      let stopping = false;
      const stop = (signal: string): void => {
        if (stopping) return;
        stopping = true;
        kairos.server.log.info({ signal }, 'stopping');
        kairos.close().then(
          () => process.exit(0),
          (err: unknown) => {
            kairos.server.log.error({ err }, 'stop failed');
            process.exit(1);
          },
        );
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
    });
};
