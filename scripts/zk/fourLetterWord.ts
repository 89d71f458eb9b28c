import { connect } from 'node:net';

/**
 * Sends a ZooKeeper four-letter command (`srvr`, `ruok`, ...) and resolves with the reply, or with null
 * when the server does not answer within `timeoutMs`. The ensemble's zoo.cfg whitelists all commands.
 */
export const fourLetterWord = (port: number, word: string, timeoutMs = 1_000): Promise<string | null> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const chunks: Buffer[] = [];
    const done = (reply: string | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reply);
    };
    const timer = setTimeout(() => done(null), timeoutMs);
    socket.on('connect', () => socket.end(word));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
    socket.on('error', () => done(null));
  });

/** `leader`, `follower` or `standalone` when the server serves clients; null while it has no quorum. */
export const serverMode = async (port: number): Promise<string | null> => {
  const reply = await fourLetterWord(port, 'srvr');
  return /^Mode: (\w+)$/m.exec(reply ?? '')?.[1] ?? null;
};
