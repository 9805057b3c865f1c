// The server's notion of "now" in MDE's 100 ns timestamp form. Successive calls in one process are strictly
// increasing, so an action's lastUpdateDateTimeUtc is a few microseconds after its creation, as on the live service.
import { formatTicks } from '../core/time.ts';

const originMicros = BigInt(Date.now()) * 1000n;
const originHr = process.hrtime.bigint();
let last = 0n; // in 100 ns units

export function nowTimestamp(): string {
  let ticks = originMicros * 10n + (process.hrtime.bigint() - originHr) / 100n;
  if (ticks <= last) ticks = last + 1n;
  last = ticks;
  return formatTicks(ticks / 10n, Number(ticks % 10n));
}
