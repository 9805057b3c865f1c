// A stored machineAction → the order a device receives (protocol v1 ActionOrder).
import type { MachineAction } from '../../core/actions.ts';
import type { ActionOrder } from '../../protocol/v1.ts';

export function toActionOrder(a: MachineAction): ActionOrder {
  return {
    id: a.id,
    type: a.type,
    comment: a.requestorComment,
    sha1: a.relatedFileInfo?.fileIdentifierType === 'Sha1' ? a.relatedFileInfo.fileIdentifier.toLowerCase() : null,
    scope: a.scope,
    requestor: a.requestor,
    createdAt: a.creationDateTimeUtc,
    expiresAt: a.expiresAt,
    params:
      a.type === 'LiveResponse'
        ? { commands: a.commands }
        : a.type === 'RestoreQuarantinedFile'
          ? ((a.commands[0] as Record<string, unknown> | undefined) ?? {})
          : {},
  };
}
