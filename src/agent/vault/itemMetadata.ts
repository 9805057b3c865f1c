// One vault item's metadata: everything a restore needs and everything an audit asks. Stored as readable JSON
// (root-only, 0600) authenticated with HMAC-SHA256 under a key derived from the device vault key: tampering
// (say, pointing a restore at another path) is detected, while an administrator can still read it with jq.
// Timestamps and inode numbers are decimal strings: nanoseconds and 64-bit inodes do not fit a JSON number.
import { readFileSync } from 'node:fs';
import type { WrappedKey } from './itemCrypto.ts';
import { macMatches, macOf } from './itemCrypto.ts';
import { writeFileDurable } from './durable.ts';

export const METADATA_FORMAT = 1;

export type ItemState = 'quarantined' | 'restored' | 'purged';

export interface ItemPath {
  path: string;
  /** The name was removed from disk after the content was safely stored. */
  removed: boolean;
  reason?: string;
}

export interface ItemMetadata {
  format: number;
  id: string;
  state: ItemState;
  actionId: string | null;
  sha1: string;
  sha256: string;
  size: number;
  /** Where a restore puts the file back by default (the first name; for a deleted binary, its old name). */
  originalPath: string;
  /** Every name of the inode the item was taken from. */
  paths: ItemPath[];
  /** How the content was read: the path itself or a /proc link (deleted or memfd binaries). */
  source: string;
  deletedOnDisk: boolean;
  memfd: boolean;
  /** Set when the file was reached in another mount namespace (a container), e.g. "pid 1234 mnt:[4026532177]". */
  namespace: string | null;
  device: string;
  inode: string;
  nlink: number;
  mode: number;
  uid: number;
  gid: number;
  atimeNs: string;
  mtimeNs: string;
  ctimeNs: string;
  flags: { immutable: boolean; appendOnly: boolean; captured: boolean; note?: string };
  xattrs: { captured: true; values: Record<string, string> } | { captured: false; reason: string };
  killedPids: number[];
  quarantinedAt: string;
  restoredAt?: string;
  restoredTo?: string;
  restoreNotes?: string[];
  purgedAt?: string;
  wrappedKey: WrappedKey;
}

interface Envelope {
  meta: ItemMetadata;
  mac: string;
}

export function writeMetadata(path: string, macKey: Buffer, meta: ItemMetadata): void {
  const envelope: Envelope = { meta, mac: macOf(macKey, meta) };
  writeFileDurable(path, JSON.stringify(envelope, null, 1));
}

/** Reads and authenticates an item's metadata; throws on a missing, malformed or tampered file. */
export function readMetadata(path: string, macKey: Buffer, expectedId: string): ItemMetadata {
  const raw = readFileSync(path, 'utf8');
  let envelope: Envelope;
  try {
    envelope = JSON.parse(raw) as Envelope;
  } catch {
    throw new Error(`vault metadata ${path} is not valid JSON`);
  }
  if (!envelope || typeof envelope !== 'object' || typeof envelope.mac !== 'string' || typeof envelope.meta !== 'object') {
    throw new Error(`vault metadata ${path} is malformed`);
  }
  if (!macMatches(macKey, envelope.meta, envelope.mac)) {
    throw new Error(`vault metadata ${path} failed authentication (tampered, or another device's key)`);
  }
  if (envelope.meta.id !== expectedId || envelope.meta.format !== METADATA_FORMAT) {
    throw new Error(`vault metadata ${path} does not belong to item ${expectedId}`);
  }
  return envelope.meta;
}
