// Stored timestamps: exactly 7 fraction digits (MDE's 100 ns ticks), so that string order is time order.
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import { formatTicks, millisToTimestamp, timestampToMillis, toWireTimestamp } from '../../src/core/time.ts';

test('formats epoch microseconds and the 100 ns digit in the fixed-width form', () => {
  assert.equal(formatTicks(0n), '1970-01-01T00:00:00.0000000Z');
  assert.equal(formatTicks(1_796_000_000_123_456n, 7), '2026-11-30T00:53:20.1234567Z');
  assert.equal(formatTicks(999_999n, 9), '1970-01-01T00:00:00.9999999Z');
  assert.equal(formatTicks(1_000_000n), '1970-01-01T00:00:01.0000000Z');
  // Past 2^53 microseconds (the year 2255) the digits stay exact.
  assert.equal(formatTicks(253_402_300_799_999_999n, 9), '9999-12-31T23:59:59.9999999Z');
});

test('consecutive timestamps across second boundaries sort as they happened', () => {
  let prev = '';
  for (let us = 1_796_000_000_999_990n; us < 1_796_000_002_000_010n; us += 997n) {
    const s = formatTicks(us, Number(us % 10n));
    assert.equal(s.length, 28);
    assert.ok(s > prev, `${s} after ${prev}`);
    assert.equal(timestampToMillis(s), Number(us / 1000n));
    prev = s;
  }
  // Going back to an earlier second after a later one gives that earlier second's date, not the later's.
  assert.equal(formatTicks(5_000_000n), '1970-01-01T00:00:05.0000000Z');
});

test('milliseconds in, stored form out, wire form trimmed', () => {
  const stored = millisToTimestamp(Date.UTC(2024, 1, 29, 23, 59, 59, 120));
  assert.equal(stored, '2024-02-29T23:59:59.1200000Z');
  assert.equal(toWireTimestamp(stored), '2024-02-29T23:59:59.12Z');
  assert.equal(toWireTimestamp(millisToTimestamp(Date.UTC(2024, 0, 1))), '2024-01-01T00:00:00Z');
});

test('timestamps from several seconds in turn (now, and now plus an expiry) each get their own date', () => {
  const reference = (us: bigint, h: number) => {
    const iso = new Date(Number(us / 1000n)).toISOString();
    return `${iso.slice(0, 23)}${String(us % 1000n).padStart(3, '0')}${h}Z`;
  };
  const week = 7n * 86_400_000_000n;
  for (let us = 1_796_000_000_000_000n; us < 1_796_000_003_000_000n; us += 104_729n) {
    for (const t of [us, us + week, us - 86_400_000_000n, us]) assert.equal(formatTicks(t, 3), reference(t, 3));
  }
});
