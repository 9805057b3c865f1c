// The agent's JSON-lines log: pino-shaped lines, level filtering, errors serialized, bad levels refused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { agentLog } from '../../src/agent/log.ts';

describe('agent log', () => {
  it('writes pino-shaped JSON lines at or above the level', () => {
    const lines: string[] = [];
    const log = agentLog('info', (l) => lines.push(l));
    log.debug({ a: 1 }, 'hidden');
    log.info({ actionId: 'x' }, 'action received');
    log.error({ err: new Error('boom') });
    assert.equal(lines.length, 2);
    const first = JSON.parse(lines[0]!);
    assert.equal(first.level, 30);
    assert.equal(first.msg, 'action received');
    assert.equal(first.actionId, 'x');
    assert.equal(typeof first.time, 'number');
    assert.equal(JSON.parse(lines[1]!).err.message, 'boom');
    assert.ok(lines.every((l) => l.endsWith('\n')));
  });

  it('refuses an unknown level and can be silenced', () => {
    assert.throws(() => agentLog('verbose'), /unknown log level/);
    const lines: string[] = [];
    agentLog('silent', (l) => lines.push(l)).error({}, 'x');
    assert.equal(lines.length, 0);
  });
});
