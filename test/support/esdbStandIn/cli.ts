// EventStoreDB protocol stand-in for tests (not EventStoreDB), run by hand:
//   npx tsx test/support/esdbStandIn/cli.ts [--port 2113] [--host 127.0.0.1]
// The log lives in memory and is gone when the process ends.
import { parseArgs } from 'node:util';
import { startEsdbStandIn } from './standIn.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '2113' }, host: { type: 'string' } } });
const standIn = await startEsdbStandIn({ port: Number(values.port), host: values.host });
process.stdout.write(`EventStoreDB protocol stand-in (in memory, for tests) listening: ${standIn.url}\n`);
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void standIn.stop());
