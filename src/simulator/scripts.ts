// Scripted outcomes: tokens in an action's Comment that decide what a simulated device does with it.
//   [sim:ok]                 succeed, whatever the profile or an injected fault says
//   [sim:fail]               fail with E_FAIL;  [sim:fail=0x80070005] (or a signed decimal) with that HRESULT
//   [sim:delay=2500]         take this many ms between ack and result (at most 10 minutes)
//   [sim:never]              ack, then never answer (the server times it out)
//   [sim:noack]              skip the ack (Pending → result directly); with [sim:never]: total silence
//   [sim:protected]          refuse as a protected file (Failed, errorHResult protectedFile)
//   [sim:offline]            go offline on receipt, come back after 3 s (or [sim:offline=ms]) and run it then
import { HRESULT } from '../core/actions.ts';

export interface Script {
  ok?: true;
  failHResult?: number;
  delayMs?: number;
  never?: true;
  noack?: true;
  protected?: true;
  offlineMs?: number;
}

const TOKEN = /\[sim:([a-z]+)(?:=([^\]\s]{1,24}))?\]/gi;
const MAX_DELAY_MS = 600_000;
const DEFAULT_OFFLINE_MS = 3000;

function parseHResult(v: string): number | null {
  const n = /^0x[0-9a-f]{1,8}$/i.test(v) ? Number.parseInt(v.slice(2), 16) : /^-?\d{1,10}$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n) || n < -2147483648 || n > 0xffffffff) return null;
  return n | 0 || null;
}

function parseMs(v: string | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, MAX_DELAY_MS) : fallback;
}

/** Unknown tokens and bad values are ignored: a comment is free text first. */
export function parseScript(comment: string): Script {
  const s: Script = {};
  for (const m of comment.matchAll(TOKEN)) {
    const key = m[1]!.toLowerCase();
    const value = m[2];
    switch (key) {
      case 'ok':
        s.ok = true;
        break;
      case 'fail':
        s.failHResult = (value !== undefined ? parseHResult(value) : null) ?? HRESULT.fail;
        break;
      case 'delay':
        if (value !== undefined) s.delayMs = parseMs(value, 0);
        break;
      case 'never':
        s.never = true;
        break;
      case 'noack':
        s.noack = true;
        break;
      case 'protected':
        s.protected = true;
        break;
      case 'offline':
        s.offlineMs = parseMs(value, DEFAULT_OFFLINE_MS);
        break;
    }
  }
  return s;
}
