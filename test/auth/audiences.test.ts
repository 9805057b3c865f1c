import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  audienceClaimFor,
  isAcceptedAudience,
  isKnownMdeAudience,
  matchAudience,
  normalizeAudience,
  resourceFromScope,
  WINDOWS_DEFENDER_ATP_APP_ID,
} from '../../src/server/auth/audiences.ts';

const ctx = { requestOrigin: 'http://127.0.0.1:8080', publicUrl: null };

describe('accepted audiences (mde-api.md §7.1, D20)', () => {
  const known = [
    'https://api.securitycenter.microsoft.com',
    'https://api.securitycenter.windows.com',
    'https://api.security.microsoft.com',
    'https://securitycenter.onmicrosoft.com/windowsatpservice',
    'https://securitycenter.onmicrosoft.us/windowsatpservice',
    'https://api-us.securitycenter.microsoft.com',
    'https://api-eu.securitycenter.microsoft.com',
    'https://api-uk.securitycenter.microsoft.com',
    'https://api-au.securitycenter.microsoft.com',
    'https://us.api.security.microsoft.com',
    'https://eu.api.security.microsoft.com',
    'https://uk.api.security.microsoft.com',
    'https://au.api.security.microsoft.com',
    'https://swa.api.security.microsoft.com',
    'https://ina.api.security.microsoft.com',
    'https://api-us.security.microsoft.com',
    'https://api-eu.security.microsoft.com',
    'https://api-uk.security.microsoft.com',
    'https://api-gcc.securitycenter.microsoft.us',
    'https://api-gov.securitycenter.microsoft.us',
    WINDOWS_DEFENDER_ATP_APP_ID,
    `api://${WINDOWS_DEFENDER_ATP_APP_ID}`,
  ];

  it('accepts every known MDE audience, with or without /.default and trailing slash, any host case', () => {
    for (const a of known) {
      for (const v of [a, `${a}/`, `${a}/.default`, `${a}/.DEFAULT`, a.replace(/^(\w+:\/\/)?([^/]+)/, (_m, s = '', h: string) => s + h.toUpperCase())]) {
        assert.equal(isKnownMdeAudience(v), true, v);
        assert.equal(matchAudience(v, ctx), 'static', v);
      }
    }
    assert.equal(isKnownMdeAudience('https://api.securitycenter.microsoft.com:443'), true);
  });

  it('accepts URLs naming this server by scheme, host and port; not other ports, schemes or hosts', () => {
    assert.equal(matchAudience('http://127.0.0.1:8080', ctx), 'origin');
    assert.equal(matchAudience('http://127.0.0.1:8080/', ctx), 'origin');
    assert.equal(matchAudience('http://127.0.0.1:8080/.default', ctx), 'origin');
    assert.equal(matchAudience('http://127.0.0.1:8080/api', ctx), 'origin');
    assert.equal(matchAudience('http://127.0.0.1:8081', ctx), null);
    assert.equal(matchAudience('https://127.0.0.1:8080', ctx), null);
    assert.equal(matchAudience('http://localhost:8080', ctx), null);
    assert.equal(matchAudience('http://127.0.0.1:8080', { requestOrigin: null, publicUrl: null }), null);
  });

  it('accepts the configured public URL wherever the request arrives', () => {
    const pub = { requestOrigin: 'http://10.0.0.5:8080', publicUrl: 'https://tourniquet.example.org' };
    assert.equal(matchAudience('https://tourniquet.example.org', pub), 'static');
    assert.equal(matchAudience('https://TOURNIQUET.example.org/.default', pub), 'static');
    assert.equal(matchAudience('https://tourniquet.example.org:443/', pub), 'static');
    assert.equal(matchAudience('http://tourniquet.example.org', pub), null);
  });

  it('refuses other resources and junk', () => {
    for (const v of [
      '',
      '   ',
      '/.default',
      'https://graph.microsoft.com',
      'https://graph.microsoft.com/.default',
      'https://management.azure.com/',
      'https://api.securitycenter.microsoft.com.evil.com',
      'https://evil.com/api.securitycenter.microsoft.com',
      'https://api.securitycenter.microsoft.com/api',
      'https://api.securitycenter.microsoft.com?x=1',
      'https://api.securitycenter.microsoft.com#x',
      'https://user:pw@api.securitycenter.microsoft.com',
      'http://api.securitycenter.microsoft.com',
      'fc780465-2017-40d4-a0c5-307022471b93',
      'api://fc780465-2017-40d4-a0c5-307022471b93',
      'not a url',
      'x'.repeat(5000),
    ]) {
      assert.equal(isAcceptedAudience(v, ctx), false, v);
      assert.equal(normalizeAudience(v) !== null && isKnownMdeAudience(v), false, v);
    }
  });
});

describe('v2 scope parsing', () => {
  it('the .default value decides among several', () => {
    assert.deepEqual(resourceFromScope('https://api.securitycenter.microsoft.com/.default offline_access'), {
      ok: true,
      resource: 'https://api.securitycenter.microsoft.com/.default',
    });
    assert.deepEqual(resourceFromScope('openid  https://securitycenter.onmicrosoft.com/windowsatpservice/.default\tprofile'), {
      ok: true,
      resource: 'https://securitycenter.onmicrosoft.com/windowsatpservice/.default',
    });
  });

  it('a lone value without .default is taken as the resource', () => {
    assert.deepEqual(resourceFromScope('https://api.securitycenter.microsoft.com'), { ok: true, resource: 'https://api.securitycenter.microsoft.com' });
    assert.deepEqual(resourceFromScope('offline_access https://api.securitycenter.microsoft.com'), {
      ok: true,
      resource: 'https://api.securitycenter.microsoft.com',
    });
  });

  it('refuses no resource or several resources', () => {
    assert.deepEqual(resourceFromScope(''), { ok: false, reason: 'none' });
    assert.deepEqual(resourceFromScope('openid offline_access'), { ok: false, reason: 'none' });
    assert.deepEqual(resourceFromScope('https://a/.default https://b/.default'), { ok: false, reason: 'several' });
    assert.deepEqual(resourceFromScope('Machine.Read Machine.Isolate'), { ok: false, reason: 'several' });
  });

  it('aud is the requested value minus /.default', () => {
    assert.equal(audienceClaimFor('https://api.securitycenter.microsoft.com/.default'), 'https://api.securitycenter.microsoft.com');
    assert.equal(audienceClaimFor('https://api.securitycenter.windows.com'), 'https://api.securitycenter.windows.com');
    assert.equal(audienceClaimFor('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080/');
  });
});
