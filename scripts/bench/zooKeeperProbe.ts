import type { Ensemble } from '../zk/ensemble.js';
import { fourLetterWord } from '../zk/fourLetterWord.js';

/** What the benchmarks read from the ensemble itself, through four-letter words on its leader. */

/**
 * A point in the leader's transaction history (`srvr`). Every committed write — create, delete, setData,
 * a whole `multi`, session creation and closing (expiry included) — takes the next zxid, whose low 32
 * bits count transactions within the leader's epoch (the high 32 bits). Reads, watches and pings take none.
 */
export type ZxidMark = { epoch: number; counter: number; at: number };

const leaderPort = async (ensemble: Ensemble): Promise<{ port: number; srvr: string }> => {
  for (const server of ensemble.servers) {
    const srvr = (await fourLetterWord(server.client, 'srvr')) ?? '';
    if (/^Mode: leader$/m.test(srvr)) return { port: server.client, srvr };
  }
  throw new Error('no ZooKeeper server answers srvr as leader');
};

export const leaderZxid = async (ensemble: Ensemble): Promise<ZxidMark> => {
  const { srvr } = await leaderPort(ensemble);
  const zxid = /^Zxid: (0x[0-9a-f]+)$/im.exec(srvr)?.[1];
  if (zxid === undefined) throw new Error(`no Zxid in the leader's srvr reply:\n${srvr}`);
  const value = BigInt(zxid);
  return { epoch: Number(value >> 32n), counter: Number(value & 0xffff_ffffn), at: Date.now() };
};

/** Transactions committed between two marks; NaN when the ensemble elected a new leader meanwhile (a new epoch). */
export const writesBetween = (from: ZxidMark, to: ZxidMark): number =>
  from.epoch === to.epoch ? to.counter - from.counter : Number.NaN;

/**
 * Slot leases per node, from the leader's `dump` (ephemeral znodes per session): a session's member
 * znode names its node. Leases of a session with no member znode count under `(no member)`.
 */
export const leasesByNode = (dump: string, chroot: string): Map<string, number> => {
  const leases = new Map<string, number>();
  let node: string | undefined;
  let slots = 0;
  const flush = (): void => {
    const key = node ?? '(no member)';
    if (node !== undefined || slots > 0) leases.set(key, (leases.get(key) ?? 0) + slots);
  };
  for (const line of dump.slice(dump.indexOf('Sessions with Ephemerals')).split('\n').slice(1)) {
    const text = line.trim();
    if (/^0x[0-9a-f]+:$/i.test(text)) {
      flush();
      node = undefined;
      slots = 0;
    } else if (text.startsWith(`${chroot}/members/`)) node = text.slice(`${chroot}/members/`.length);
    else if (text.startsWith(`${chroot}/slots/`)) slots++;
  }
  flush();
  return leases;
};

export const totalLeases = (leases: ReadonlyMap<string, number>): number =>
  [...leases.values()].reduce((a, b) => a + b, 0);

/**
 * Polls the leader's `dump` every 100 ms until `done` holds for the slot leases per node and they stay
 * unchanged for `stableForMs`; resolves with the instant that stretch began (at most ~100 ms late) and
 * the leases then, or with NaN when `deadline` passes first.
 */
export const leasesSettledAt = async (
  ensemble: Ensemble,
  chroot: string,
  done: (leases: ReadonlyMap<string, number>) => boolean,
  deadline: number,
  stableForMs = 0,
): Promise<{ at: number; leases: ReadonlyMap<string, number> }> => {
  const { port } = await leaderPort(ensemble);
  let since = Number.NaN;
  let seen = '';
  let leases: ReadonlyMap<string, number> = new Map();
  while (Date.now() < deadline) {
    const dump = await fourLetterWord(port, 'dump');
    if (dump !== null) {
      leases = leasesByNode(dump, chroot);
      const key = JSON.stringify([...leases].sort());
      if (!done(leases)) since = Number.NaN;
      else if (Number.isNaN(since) || key !== seen) since = Date.now();
      seen = key;
      if (Date.now() - since >= stableForMs) return { at: since, leases };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { at: Number.NaN, leases };
};
