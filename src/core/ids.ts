// Identifier shapes MDE clients expect.
import { createHash, randomUUID } from 'node:crypto';

export const newGuid = (): string => randomUUID();

/** A 40-hex machine id derived from the device's public key: stable for a key, unguessable without it. */
export function machineIdFromPublicKey(publicKeyB64: string): string {
  return createHash('sha1').update('tourniquet-machine\n').update(publicKeyB64).digest('hex');
}
