// Signing in through an upstream identity provider in headless Chromium: a
// second Sesame on idp.other.test (another site) is the provider of the
// Sesame on auth.example.test. The chooser's button, auth0-spa-js's
// `connection`, and the cross-site form_post answer that SameSite=Lax cookies
// do not accompany.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { PASSWORD, startStack } from './harness.mjs';

const SECRET = 'downstream-secret-0123456789abcdef';
const BOB = 'bob@idp.test';
const CAROL = 'carol@idp.test';

function provider(id, name, site, upstreamPort, extra = '') {
  return `
[[providers]]
id = "${id}"
name = "${name}"
kind = "oidc"
issuer = "${site('idp.other.test')}/"
client_id = "downstream"
client_secret_env = "CORP_SECRET"
authorization_endpoint = "${site('idp.other.test')}/authorize"
token_endpoint = "http://127.0.0.1:${upstreamPort}/token"
jwks_uri = "http://127.0.0.1:${upstreamPort}/jwks"
${extra}
`;
}

describe('federation (auth.example.test signs in through idp.other.test)', () => {
  let s;
  let opts;
  before(async () => {
    s = await startStack({
      authHost: 'auth.example.test',
      clients: [[
        '--name', 'Games', '--id', 'games', '--public', '--first-party',
        '--redirect-uri', '{site:games.example.test}/spa.html',
        '--web-origin', '{site:games.example.test}',
        '--grant-type', 'authorization_code', 'refresh_token', '--id-token-alg', 'RS256',
      ]],
      upstream: {
        host: 'idp.other.test',
        clients: [{
          args: ['--name', 'Downstream Sesame', '--id', 'downstream', '--first-party', '--secret-stdin',
            '--redirect-uri', '{site:auth.example.test}/federation/corp/callback',
            '{site:auth.example.test}/federation/corppost/callback',
            '--grant-type', 'authorization_code'],
          secret: SECRET,
        }],
        users: [{ email: BOB, name: 'Bob Upstream' }, { email: CAROL, name: 'Carol Upstream' }],
      },
      config: ({ site, upstreamPort }) => provider('corp', 'Corp SSO', site, upstreamPort)
        + provider('corppost', 'Corp SSO (form_post)', site, upstreamPort, 'response_mode = "form_post"'),
      secrets: { CORP_SECRET: SECRET },
    });
    opts = {
      domain: `auth.example.test:${s.port}`,
      clientId: 'games',
      authorizationParams: { redirect_uri: `${s.site('games.example.test')}/spa.html` },
    };
  });
  after(async () => {
    if (process.env.FED_DEBUG) console.log(s.log());
    return s && s.stop();
  });

  async function upstreamSignIn(page, email) {
    await page.waitForURL((u) => u.hostname === 'idp.other.test' && u.pathname === '/login');
    await page.fill('input[name=email]', email);
    await page.fill('input[name=password]', PASSWORD);
    await page.click('button[type=submit]');
  }

  async function finish(page) {
    await page.waitForURL(/spa\.html\?code=/);
    return page.evaluate(async (o) => {
      const c = await auth0.createAuth0Client(o);
      await c.handleRedirectCallback();
      return { user: await c.getUser(), claims: await c.getIdTokenClaims() };
    }, opts);
  }

  test('the chooser: Continue with Corp SSO, the upstream login box, back signed in to the SPA', async () => {
    const ctx = await s.profile();
    const page = await ctx.newPage();
    await page.goto(opts.authorizationParams.redirect_uri);
    page.evaluate(async (o) => (await auth0.createAuth0Client(o)).loginWithRedirect(), opts).catch(() => {});
    await page.waitForURL(/\/login\?req=/);
    const button = page.getByRole('link', { name: 'Continue with Corp SSO', exact: true });
    assert.equal(await button.count(), 1, 'an accessible button');
    await button.click();
    await upstreamSignIn(page, BOB);
    const { user, claims } = await finish(page);
    assert.equal(user.email, BOB);
    assert.equal(claims.idp, 'corp');
    assert.deepEqual(claims.amr, ['pwd']);
    assert.match(claims.iss, /auth\.example\.test/);
  });

  test('connection= skips the chooser, and the cross-site form_post answer comes back with Lax cookies', async () => {
    const ctx = await s.profile();
    const page = await ctx.newPage();
    const seen = [];
    page.on('request', (r) => r.isNavigationRequest() && seen.push(`${r.method()} ${r.url()}`));
    await page.goto(opts.authorizationParams.redirect_uri);
    page.evaluate(async (o) => (await auth0.createAuth0Client(o))
      .loginWithRedirect({ authorizationParams: { connection: 'corppost' } }), opts).catch(() => {});
    // (Carol: Bob's address already belongs to the account his Corp SSO login
    // created, so this other provider id would first ask him to prove it.)
    await upstreamSignIn(page, CAROL);
    const { user, claims } = await finish(page);
    assert.equal(user.email, CAROL);
    assert.equal(claims.idp, 'corppost');
    assert.ok(!seen.some((u) => u.includes('auth.example.test') && u.includes('/login?')), 'no chooser shown');
    assert.ok(seen.some((u) => u.startsWith('POST ') && u.includes('/federation/corppost/callback')), 'answered by form_post');
    const cookies = await ctx.cookies(`https://auth.example.test:${s.port}`);
    assert.ok(cookies.every((c) => c.sameSite !== 'None'), 'Lax cookies only');
  });
});
