// The pure rules: device-group matching and ranking, RBAC decisions and scopes, scope parsing, PKCE, redirect URIs.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  globMatch,
  matchesRule,
  parseRule,
  placeMachine,
  ruleFromAssignments,
  RuleError,
  UNGROUPED_ID,
  UNGROUPED_NAME,
  type GroupedFacts,
} from '../../src/core/deviceGroups.ts';
import { decide, delegatedScopesFor, parsePermissions, rbacForbiddenMessage, displayNameProblem } from '../../src/core/rbac.ts';
import { parseDelegatedScope } from '../../src/server/auth/delegatedTokens.ts';
import { isCodeVerifier, s256, verifierMatches } from '../../src/server/auth/pkce.ts';
import { parseRedirectUris, redirectUriProblem } from '../../src/server/auth/redirectUris.ts';

const facts = (over: Partial<GroupedFacts> = {}): GroupedFacts => ({
  computerDnsName: 'web-01.berlin.contoso.local',
  domain: null,
  osPlatform: 'Linux',
  machineTags: ['prod'],
  enrollGroup: null,
  ...over,
});

describe('globMatch', () => {
  const cases: [string, string, boolean][] = [
    ['web-*', 'web-01.contoso.local', true],
    ['WEB-*', 'web-01', true],
    ['*.contoso.local', 'web-01.contoso.local', true],
    ['web-??', 'web-01', true],
    ['web-??', 'web-001', false],
    ['web', 'web-01', false],
    ['*', '', true],
    ['', '', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXbY', false],
    ['%', 'x', false], // no SQL wildcards
    ['[a]', 'a', false], // no character classes: brackets are literal
    ['[a]', '[a]', true],
  ];
  for (const [p, t, want] of cases) it(`${JSON.stringify(p)} vs ${JSON.stringify(t)} → ${want}`, () => assert.equal(globMatch(p, t), want));

  it('stays fast on adversarial patterns', () => {
    const started = Date.now();
    assert.equal(globMatch('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(250)), false);
    assert.ok(Date.now() - started < 200);
  });
});

describe('device group rules', () => {
  it('matches name (full or host), domain (given or from DNS), OS, tags and enroll group; all criteria must hold', () => {
    assert.ok(matchesRule({ name: ['web-01'] }, facts()), 'host name alone');
    assert.ok(matchesRule({ name: ['web-*.berlin.*'] }, facts()));
    assert.ok(matchesRule({ domain: ['berlin.contoso.local'] }, facts()), 'domain from the DNS suffix');
    assert.ok(matchesRule({ domain: ['CONTOSO'] }, facts({ domain: 'contoso' })), 'reported domain wins');
    assert.ok(!matchesRule({ domain: ['berlin.contoso.local'] }, facts({ domain: 'contoso' })));
    assert.ok(!matchesRule({ domain: ['*'] }, facts({ computerDnsName: 'nodomain' })), 'no domain at all matches nothing');
    assert.ok(matchesRule({ osPlatform: ['Windows*', 'linux'] }, facts()));
    assert.ok(matchesRule({ tags: ['Prod'] }, facts()));
    assert.ok(!matchesRule({ tags: ['prod'] }, facts({ machineTags: [] })));
    assert.ok(matchesRule({ enrollGroup: ['linux-*'] }, facts({ enrollGroup: 'linux-servers' })));
    assert.ok(!matchesRule({ enrollGroup: ['*'] }, facts()));
    assert.ok(matchesRule({ name: ['web-*'], tags: ['prod'], osPlatform: ['Linux'] }, facts()));
    assert.ok(!matchesRule({ name: ['web-*'], tags: ['dev'] }, facts()), 'AND across criteria');
  });

  it('places by lowest rank first; unmatched → Ungrouped devices (id 0)', () => {
    const groups = [
      { id: 7, name: 'Prod', rank: 2, rule: { tags: ['prod'] } },
      { id: 9, name: 'Berlin web', rank: 1, rule: { name: ['web-*'] } },
    ];
    assert.deepEqual(placeMachine(groups, facts()), { rbacGroupId: 9, rbacGroupName: 'Berlin web' });
    assert.deepEqual(placeMachine(groups, facts({ computerDnsName: 'db-01' })), { rbacGroupId: 7, rbacGroupName: 'Prod' });
    assert.deepEqual(placeMachine(groups, facts({ computerDnsName: 'db-01', machineTags: [] })), {
      rbacGroupId: UNGROUPED_ID,
      rbacGroupName: UNGROUPED_NAME,
    });
  });

  it('refuses malformed rules', () => {
    const bad: unknown[] = [
      null,
      [],
      'name=x',
      {},
      { nope: ['x'] },
      { name: [] },
      { name: [''] },
      { name: [1] },
      { name: ['x'.repeat(257)] },
      { name: ['a\nb'] },
      { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) },
    ];
    for (const b of bad) assert.throws(() => parseRule(b), RuleError, JSON.stringify(b));
    assert.deepEqual(parseRule({ name: 'web-*', tags: ['a', 'a', 'b'] }), { name: ['web-*'], tags: ['a', 'b'] });
  });

  it('reads CLI --rule values', () => {
    assert.deepEqual(ruleFromAssignments(['name=web-*,api-*', 'os=Linux', 'tag=prod', 'tag=pci', 'enroll-group=x']), {
      name: ['web-*', 'api-*'],
      osPlatform: ['Linux'],
      tags: ['prod', 'pci'],
      enrollGroup: ['x'],
    });
    for (const bad of [['name'], ['=x'], ['color=red'], ['name=']]) assert.throws(() => ruleFromAssignments(bad), RuleError);
  });
});

describe('RBAC decisions and scopes', () => {
  const reader = { permissions: ['View data' as const], allGroups: false, deviceGroupIds: [1] };
  const responderB = { permissions: ['View data' as const, 'Active remediation actions' as const], allGroups: false, deviceGroupIds: [2, 3] };
  const readerAll = { permissions: ['View data' as const], allGroups: true, deviceGroupIds: [] };

  it('unions device groups of the assignments that grant the permission', () => {
    assert.deepEqual(decide([reader, responderB], 'View data'), { ok: true, visibility: { rbacGroupIds: [1, 2, 3] } });
    assert.deepEqual(decide([reader, responderB], 'Active remediation actions'), { ok: true, visibility: { rbacGroupIds: [2, 3] } });
    assert.deepEqual(decide([reader, readerAll], 'View data'), { ok: true, visibility: undefined }, 'all groups wins');
  });

  it('says what is missing', () => {
    const none = decide([], 'View data');
    assert.deepEqual(none, { ok: false, reason: 'noRole', granted: [] });
    const missing = decide([reader], 'Active remediation actions');
    assert.equal(missing.ok, false);
    if (!missing.ok) {
      assert.match(rbacForbiddenMessage('Active remediation actions', missing), /requires the role permission "Active remediation actions"/);
    }
    if (!none.ok) assert.match(rbacForbiddenMessage('View data', none), /no role assigned.*"View data"/);
  });

  it('derives scp from role permissions in a stable order', () => {
    assert.deepEqual(delegatedScopesFor(['View data']), ['Machine.Read', 'Alert.Read']);
    const responder = delegatedScopesFor(['Active remediation actions', 'View data']);
    assert.ok(responder.includes('Machine.StopAndQuarantine') && responder.indexOf('Machine.Read') === 0);
    assert.deepEqual(delegatedScopesFor([]), []);
  });

  it('validates permissions and names', () => {
    assert.deepEqual(parsePermissions(['Active remediation actions', 'View data', 'View data']), ['View data', 'Active remediation actions']);
    for (const bad of [[], 'View data', ['view data'], ['Admin'], [1]]) assert.equal(typeof parsePermissions(bad), 'string', JSON.stringify(bad));
    for (const bad of ['', ' x', 'x ', 'a,b', 'a\tb', 'x'.repeat(129), 5]) assert.notEqual(displayNameProblem(bad, 'name'), null, String(bad));
    assert.equal(displayNameProblem('Berlin responders', 'name'), null);
  });
});

describe('delegated scope requests', () => {
  it('reads .default, named permissions and bare resources; ignores OIDC scopes', () => {
    assert.deepEqual(parseDelegatedScope('https://api.securitycenter.microsoft.com/.default openid offline_access'), {
      resource: 'https://api.securitycenter.microsoft.com',
      requested: null,
    });
    assert.deepEqual(parseDelegatedScope('https://api.securitycenter.microsoft.com/Machine.Read https://api.securitycenter.microsoft.com/machine.isolate'), {
      resource: 'https://api.securitycenter.microsoft.com',
      requested: ['Machine.Read', 'Machine.Isolate'],
    });
    assert.deepEqual(parseDelegatedScope('http://127.0.0.1:8080'), { resource: 'http://127.0.0.1:8080', requested: null });
  });

  it('refuses no resource or several', () => {
    for (const bad of ['', 'openid profile', 'https://a.example/.default https://b.example/.default', 'https://x/Machine.Read https://y/Machine.Read', 'https://x?y/.default']) {
      assert.equal(parseDelegatedScope(bad), null, bad);
    }
  });
});

describe('PKCE (S256) and redirect URIs', () => {
  it('matches only the right verifier', () => {
    const verifier = 'a'.repeat(43);
    const challenge = s256(verifier);
    assert.equal(challenge.length, 43);
    assert.ok(verifierMatches(verifier, challenge));
    assert.ok(!verifierMatches('b'.repeat(43), challenge));
    assert.ok(!verifierMatches(verifier, verifier), 'plain is not accepted');
    for (const bad of ['short', 'a'.repeat(129), 'a'.repeat(42) + '!', 'a'.repeat(42) + ' ']) assert.ok(!isCodeVerifier(bad), bad);
  });

  it('allows https, loopback http and private-use schemes only', () => {
    for (const ok of ['https://console.example.org/cb', 'http://127.0.0.1:8400/cb', 'http://localhost/cb', 'http://[::1]:9/x', 'com.example.app:/oauth2redirect']) {
      assert.equal(redirectUriProblem(ok), null, ok);
    }
    for (const bad of ['http://console.example.org/cb', 'https://x.example/cb#frag', 'javascript:alert(1)', 'data:text/html,x', '/relative', 'https://u:p@x.example/', 'myapp:/cb', '', 'https://x.example/a b']) {
      assert.notEqual(redirectUriProblem(bad), null, bad);
    }
    assert.equal(typeof parseRedirectUris('https://x.example'), 'string');
    assert.deepEqual(parseRedirectUris(['https://x.example/cb', 'https://x.example/cb']), ['https://x.example/cb']);
  });
});
