// Device groups as MDE ranks them: each group has one rule, rules are tried from rank 1 up, the first that
// matches places the machine, and a machine no rule matches is in "Ungrouped devices". A rule is a conjunction
// of criteria (name, domain, OS platform, tags, enroll group); within a criterion any listed pattern may match.
// Patterns are case-insensitive globs: `*` any run of characters, `?` one character.
import type { Machine } from './machines.ts';

/** MDE's default group. Its id is 0, which is also what MDE reports for a machine in no group at all. */
export const UNGROUPED_ID = 0;
export const UNGROUPED_NAME = 'Ungrouped devices';

export const RULE_CRITERIA = ['name', 'domain', 'osPlatform', 'tags', 'enrollGroup'] as const;
export type RuleCriterion = (typeof RULE_CRITERIA)[number];

export type DeviceGroupRule = Partial<Record<RuleCriterion, string[]>>;

export interface RankedGroup {
  id: number;
  name: string;
  rank: number;
  rule: DeviceGroupRule;
}

export const MAX_PATTERN_LENGTH = 256;
export const MAX_PATTERNS_PER_CRITERION = 64;

export class RuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuleError';
  }
}

/** A rule from untrusted JSON: known criteria only, each a non-empty list of bounded patterns, at least one. */
export function parseRule(input: unknown): DeviceGroupRule {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) throw new RuleError('rule must be an object');
  const rule: DeviceGroupRule = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    const criterion = RULE_CRITERIA.find((c) => c === key);
    if (!criterion) throw new RuleError(`unknown rule criterion '${key}'. Known: ${RULE_CRITERIA.join(', ')}`);
    const list = typeof value === 'string' ? [value] : value;
    if (!Array.isArray(list) || list.length === 0) throw new RuleError(`rule.${key} must be a non-empty list of patterns`);
    if (list.length > MAX_PATTERNS_PER_CRITERION) throw new RuleError(`rule.${key} has more than ${MAX_PATTERNS_PER_CRITERION} patterns`);
    const patterns: string[] = [];
    for (const p of list) {
      if (typeof p !== 'string' || p.length === 0) throw new RuleError(`rule.${key} patterns must be non-empty strings`);
      if (p.length > MAX_PATTERN_LENGTH) throw new RuleError(`rule.${key} patterns must be at most ${MAX_PATTERN_LENGTH} characters`);
      if (/[\u0000-\u001f\u007f]/.test(p)) throw new RuleError(`rule.${key} patterns must not contain control characters`);
      if (!patterns.includes(p)) patterns.push(p);
    }
    rule[criterion] = patterns;
  }
  if (RULE_CRITERIA.every((c) => rule[c] === undefined)) {
    throw new RuleError(`rule needs at least one criterion (${RULE_CRITERIA.join(', ')})`);
  }
  return rule;
}

/**
 * Case-insensitive glob match in O(pattern × text) without regular expressions, so no pattern can make
 * matching blow up (the classic greedy algorithm with a single backtrack point).
 */
export function globMatch(pattern: string, text: string): boolean {
  const p = pattern.toLowerCase();
  const t = text.toLowerCase();
  let pi = 0;
  let ti = 0;
  let star = -1;
  let mark = 0;
  while (ti < t.length) {
    if (pi < p.length && (p[pi] === '?' || p[pi] === t[ti])) {
      pi++;
      ti++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = ti;
    } else if (star !== -1) {
      pi = star + 1;
      ti = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}

/** The machine facts rules look at. */
export type GroupedFacts = Pick<Machine, 'computerDnsName' | 'domain' | 'osPlatform' | 'machineTags' | 'enrollGroup'>;

/** The domain a rule compares: the reported one, else the DNS name's suffix after the host label. */
function domainOf(m: GroupedFacts): string | null {
  if (m.domain) return m.domain;
  const dot = m.computerDnsName.indexOf('.');
  return dot > 0 && dot < m.computerDnsName.length - 1 ? m.computerDnsName.slice(dot + 1) : null;
}

function anyMatch(patterns: readonly string[], values: readonly (string | null)[]): boolean {
  return patterns.some((p) => values.some((v) => v !== null && globMatch(p, v)));
}

export function matchesRule(rule: DeviceGroupRule, m: GroupedFacts): boolean {
  if (rule.name) {
    // A name pattern may be written for the full DNS name or for the host name alone (`web-01`, `web-*`).
    const host = m.computerDnsName.split('.')[0] ?? m.computerDnsName;
    if (!anyMatch(rule.name, [m.computerDnsName, host])) return false;
  }
  if (rule.domain && !anyMatch(rule.domain, [domainOf(m)])) return false;
  if (rule.osPlatform && !anyMatch(rule.osPlatform, [m.osPlatform])) return false;
  if (rule.tags && !anyMatch(rule.tags, m.machineTags)) return false;
  if (rule.enrollGroup && !anyMatch(rule.enrollGroup, [m.enrollGroup])) return false;
  return true;
}

/** Orders groups as rules are tried: by rank, then by id so equal ranks (never stored) still decide stably. */
export function byRank(a: RankedGroup, b: RankedGroup): number {
  return a.rank - b.rank || a.id - b.id;
}

/** Where the rules place a machine: the first matching group by rank, else Ungrouped devices. */
export function placeMachine(groups: readonly RankedGroup[], m: GroupedFacts): { rbacGroupId: number; rbacGroupName: string } {
  const hit = [...groups].sort(byRank).find((g) => matchesRule(g.rule, m));
  return hit ? { rbacGroupId: hit.id, rbacGroupName: hit.name } : { rbacGroupId: UNGROUPED_ID, rbacGroupName: UNGROUPED_NAME };
}

/**
 * A rule from the CLI's `--rule` values: each `criterion=pattern[,pattern…]`; repeated criteria add patterns.
 * `os` is accepted for osPlatform, `tag` for tags, `enroll-group` for enrollGroup.
 */
export function ruleFromAssignments(assignments: readonly string[]): DeviceGroupRule {
  const aliases: Record<string, RuleCriterion> = {
    name: 'name',
    domain: 'domain',
    os: 'osPlatform',
    osplatform: 'osPlatform',
    tag: 'tags',
    tags: 'tags',
    enrollgroup: 'enrollGroup',
    'enroll-group': 'enrollGroup',
  };
  const raw: Record<string, string[]> = {};
  for (const a of assignments) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new RuleError(`rule '${a}' must look like criterion=pattern (criteria: name, domain, os, tag, enroll-group)`);
    const key = aliases[a.slice(0, eq).trim().toLowerCase()];
    if (!key) throw new RuleError(`unknown rule criterion '${a.slice(0, eq)}' (criteria: name, domain, os, tag, enroll-group)`);
    const values = a
      .slice(eq + 1)
      .split(',')
      .map((v) => v.trim())
      .filter((v) => v.length > 0);
    (raw[key] ??= []).push(...values);
  }
  return parseRule(raw);
}
