// The vault inventory in the shape of protocol v1's `vault` frame (sent in chunks of at most 1,000 items).
import type { DeviceMessage } from '../protocol/v1.ts';
import { isGuid } from '../core/validation.ts';
import type { Vault } from './vault/vault.ts';

export type VaultReportItem = Extract<DeviceMessage, { t: 'vault' }>['items'][number];

export const VAULT_ITEMS_PER_FRAME = 1000;

/** Every authentic vault item, oldest first; action ids that are not the server's GUIDs are reported as null. */
export function vaultReport(vault: Vault): VaultReportItem[] {
  return vault.list().map((i) => ({
    itemId: i.itemId,
    actionId: i.actionId !== null && isGuid(i.actionId) ? i.actionId.toLowerCase() : null,
    sha1: i.sha1,
    sha256: i.sha256,
    originalPath: i.originalPath.length > 0 ? i.originalPath.slice(0, 4096) : '?',
    size: i.size,
    quarantinedAt: i.quarantinedAt,
    state: i.state,
  }));
}

/** The report split into frame-sized chunks. */
export function vaultReportChunks(vault: Vault): VaultReportItem[][] {
  const items = vaultReport(vault);
  const out: VaultReportItem[][] = [];
  for (let i = 0; i < items.length; i += VAULT_ITEMS_PER_FRAME) out.push(items.slice(i, i + VAULT_ITEMS_PER_FRAME));
  return out;
}
