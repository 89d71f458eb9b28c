#!/usr/bin/env node
import { Command } from 'commander';
import { kairosVersion } from '../app/version.js';
import { apiClient } from './apiClient.js';
import { registerApply } from './applyCommand.js';
import { registerAudit } from './auditCommand.js';
import { registerEvents } from './eventsCommand.js';
import { registerExplain } from './explainCommand.js';
import { registerExport } from './exportCommand.js';
import { registerFires } from './firesCommand.js';
import { registerImport } from './importCommand.js';
import { reportError } from './output.js';
import { registerReplay } from './replayCommand.js';
import { registerStart } from './startCommand.js';
import { registerState } from './stateCommand.js';
import { registerStats } from './statsCommand.js';
import { registerTaskCommands } from './taskCommands.js';
import { registerVerify } from './verifyCommand.js';
import { registerCluster } from './clusterCommand.js';

// Commands import what they need (the node, the store, the schemas) when they run: a `kairos task ...`
// call then loads commander and fetch only, and starts several times faster.
const defaultUrl = (): string =>
  process.env.KAIROS_URL ?? `http://${process.env.KAIROS_HOST ?? '127.0.0.1'}:${process.env.KAIROS_PORT ?? '8080'}`;

const program = new Command('kairos')
  .description('Kairos: a distributed, event-sourced cron scheduler')
  .version(kairosVersion())
  .option('--url <url>', 'node API URL (KAIROS_URL; default http://KAIROS_HOST:KAIROS_PORT)')
  .showHelpAfterError();

const client = () => apiClient((program.opts() as { url?: string }).url ?? defaultUrl());

registerStart(program);
registerTaskCommands(program, client);
registerApply(program, client);
registerEvents(program, client);
registerVerify(program, client);
registerCluster(program, client);
registerFires(program, client);
registerAudit(program, client);
registerExplain(program, client);
registerState(program, client);
registerStats(program, client);
registerReplay(program, client);
registerExport(program);
registerImport(program);

// `kairos fires | head`: a reader that stops early is not an error worth a stack trace.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

/** The command that ran, so an API error names the flags the user typed rather than the API's fields. */
let ran: Command | undefined;
program.hook('preAction', (_program, action) => {
  ran = action;
});
/** A flag given on the command line for that field; not one a file (`-f`), a default or the environment filled. */
const flagOf = (field: string): string | undefined => {
  const option = ran?.options.find((o) => o.long !== undefined && o.attributeName() === field);
  return option && ran?.getOptionValueSource(field) === 'cli' ? option.long : undefined;
};

program.parseAsync(process.argv).catch((err: unknown) => reportError(err, flagOf));
