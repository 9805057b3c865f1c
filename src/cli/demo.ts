// `serve --demo`: a simulated fleet inside the server process, enrolled through the real gateway, and a recipe
// with real credentials that takes a newcomer from a token to a Succeeded StopAndQuarantineFile.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { BuiltServer } from '../server/app.ts';
import { useApiConventions } from '../server/mde/plugin.ts';
import { DEMO_SHA1, Fleet, registerSimulatorAdmin, type ProfileName } from '../simulator/index.ts';
import { createApp, createEnrollToken } from './credentials.ts';
import type { RunningServer } from './serve.ts';

export const DEMO_ROLES = [
  'Machine.Read.All',
  'Machine.ReadWrite.All',
  'Machine.StopAndQuarantine',
  'Machine.Isolate',
  'Machine.Scan',
  'Machine.RestrictExecution',
  'Machine.CollectForensics',
  'Machine.Offboard',
  'Machine.LiveResponse',
  'Alert.Read.All',
  'Tourniquet.Audit.Read',
];

export interface DemoOptions {
  devices: number;
  profile: string;
  seed: string;
}

export interface Demo {
  fleet: Fleet;
  recipe: string;
  stop(): Promise<void>;
}

/** Where the admin API finds the fleet, which exists only once the server listens and devices can enroll. */
export interface FleetHolder {
  fleet: Fleet | null;
}

/**
 * Mounts the simulator admin API on the server (outside /api, bearer-authenticated, Machine.ReadWrite.All):
 * called before listen, since routes cannot be added afterwards.
 */
export function mountDemoAdmin(built: BuiltServer, holder: FleetHolder): void {
  built.app.register(async (scope) => {
    useApiConventions(scope, built.ctx, { authenticate: true });
    registerSimulatorAdmin(scope, () => holder.fleet, {
      authorize: (req) => req.principal?.roles.includes('Machine.ReadWrite.All') === true,
    });
  });
}

export async function startDemo(
  server: RunningServer,
  holder: FleetHolder,
  opts: DemoOptions,
  print = console.log,
): Promise<Demo> {
  const { store, url } = server;
  const app = await createApp(store, 'Tourniquet demo', DEMO_ROLES);
  const enroll = await createEnrollToken(store, { group: 'demo', ttlSec: 24 * 3600 });
  const fleet = new Fleet({ server: url, enrollToken: enroll.token, seed: opts.seed, profile: opts.profile as ProfileName });
  holder.fleet = fleet;
  await fleet.start(opts.devices);
  const target = fleet.summaries().find((d) => !d.legacy && d.machineId) ?? fleet.summaries()[0];
  const recipe = demoRecipe({ url, tenantId: app.tenantId, clientId: app.clientId, clientSecret: app.clientSecret, machineId: target?.machineId ?? '' });
  const recipePath = join(server.built.ctx.config.dataDir, 'demo-recipe.sh');
  try {
    writeFileSync(recipePath, recipe, { mode: 0o600 });
  } catch {
    // A PostgreSQL-backed server may have no writable data dir; the printed recipe is enough.
  }
  print(`${opts.devices} devices online`);
  print('');
  print(`Demo fleet: ${opts.devices} simulated devices (profile ${opts.profile}, seed ${opts.seed}).`);
  print(`Paste this into a shell (also saved as ${recipePath}):`);
  print('');
  print(recipe);
  return { fleet, recipe, stop: () => fleet.stop() };
}

export function demoRecipe(o: { url: string; tenantId: string; clientId: string; clientSecret: string; machineId: string }): string {
  return `BASE='${o.url}'
TENANT='${o.tenantId}'
CLIENT_ID='${o.clientId}'
CLIENT_SECRET='${o.clientSecret}'
MACHINE='${o.machineId}'
SHA1='${DEMO_SHA1}'

# 1. An access token, exactly as from Entra ID (client credentials, v2 endpoint)
TOKEN=$(curl -s -X POST "$BASE/$TENANT/oauth2/v2.0/token" \\
  -d grant_type=client_credentials -d "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET" \\
  --data-urlencode 'scope=https://api.securitycenter.microsoft.com/.default' | grep -o '"access_token":"[^"]*"' | cut -d'"' -f4)

# 2. Stop and quarantine the file on the machine (201 + a Pending machineAction)
ACTION=$(curl -s -X POST "$BASE/api/machines/$MACHINE/StopAndQuarantineFile" \\
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
  -d "{\\"Comment\\": \\"demo: stop and quarantine\\", \\"Sha1\\": \\"$SHA1\\"}" | grep -o '"id":"[^"]*"' | head -n1 | cut -d'"' -f4)
echo "action $ACTION"

# 3. Poll until the device has done it
for i in $(seq 1 60); do
  STATUS=$(curl -s "$BASE/api/machineactions/$ACTION" -H "Authorization: Bearer $TOKEN" | grep -o '"status":"[^"]*"' | cut -d'"' -f4)
  echo "status $STATUS"
  case "$STATUS" in Pending|InProgress) sleep 1 ;; *) break ;; esac
done
`;
}
