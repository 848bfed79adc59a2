// Auth0's browser SDKs beyond the redirect: auth0-js embedded login (the
// app's own page collects the password) on a sibling subdomain and on
// another site, and DPoP-bound tokens with auth0-spa-js (`useDpop`) and
// oidc-client-ts (a DPoP store), with `[dpop] require_nonce` on so every
// token call does the nonce dance. A reference API checks `cnf.jkt` against
// the proof. The real bundles, configured with nothing but Sesame's domain.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import * as jose from 'jose';

import { EMAIL, PASSWORD, signIn, startStack } from './harness.mjs';

/** auth0-js WebAuth for the app page `page` is on. */
function webAuthCall(page, domain, clientID, call, args) {
  return page.evaluate(([domain, clientID, call, args]) => new Promise((resolve) => {
    const web = new auth0.WebAuth({
      domain, clientID, redirectUri: `${location.origin}/js.html`, responseType: 'token id_token', scope: 'openid email',
    });
    const done = (err, res) => resolve(err
      ? { code: err.code, description: err.description, name: err.name, policy: err.policy, error: err.error }
      : { ok: true, res: typeof res === 'string' ? res : JSON.parse(JSON.stringify(res || {})) });
    if (call === 'login') web.login({ realm: 'Username-Password-Authentication', ...args }, done);
    else if (call === 'signup') web.signup({ connection: 'Username-Password-Authentication', ...args }, done);
    else web.changePassword({ connection: 'Username-Password-Authentication', ...args }, done);
  }), [domain, clientID, call, args]);
}

/** Back on js.html after a login: what parseHash makes of the answer. */
function parseHash(page, domain, clientID) {
  return page.evaluate(([domain, clientID]) => new Promise((resolve) => {
    const web = new auth0.WebAuth({ domain, clientID, redirectUri: `${location.origin}/js.html`, responseType: 'token id_token' });
    web.parseHash({ hash: location.hash }, (err, r) => resolve(err
      ? { error: err.error, description: err.errorDescription || err.error_description }
      : { email: r.idTokenPayload.email, verified: r.idTokenPayload.email_verified, amr: r.idTokenPayload.amr }));
  }), [domain, clientID]);
}

/** webAuth.login from `page`, then wherever the browser lands. */
async function embeddedLogin(page, domain, clientID, email, password) {
  const tickets = [];
  const seen = (r) => { const t = new URL(r.url()).searchParams.get('login_ticket'); if (t) tickets.push(r.url()); };
  page.on('request', seen);
  const err = await Promise.race([
    webAuthCall(page, domain, clientID, 'login', { username: email, password }),
    page.waitForURL(/js\.html#/, { timeout: 20000 }).then(() => null),
  ]).catch(() => null);
  page.off('request', seen);
  if (err && !err.ok) return { err, tickets };
  // Through Sesame's hops (and, for the fallback, its form post) back to the app.
  for (let i = 0; i < 200 && !/js\.html#/.test(page.url()); i++) await new Promise((r) => setTimeout(r, 100));
  await page.waitForLoadState().catch(() => {});
  if (!/js\.html#/.test(page.url())) throw new Error(`stuck at ${page.url()}: ${await page.textContent('body').catch(() => '')}`);
  return { result: await parseHash(page, domain, clientID), tickets };
}

const embeddedClient = (id, site, extra = []) => [
  '--name', `Embedded ${id}`, '--id', id, '--public', '--first-party',
  '--redirect-uri', `{site:${site}}/js.html`, '--web-origin', `{site:${site}}`,
  '--grant-type', 'implicit', 'authorization_code', '--id-token-alg', 'RS256', '--cross-origin-authentication', ...extra,
];

describe('auth0-js embedded login', () => {
  let s;
  let domain;
  before(async () => {
    // Auth0's sign-up behaviour (an app that signs the new user in at once,
    // and shows "The user already exists."): docs/spas.md says what it reveals.
    s = await startStack({
      authHost: 'auth.example.test',
      config: '[login]\nreveal_existing_accounts = true\n',
      clients: [
        embeddedClient('shop', 'shop.example.test'),
        embeddedClient('partner', 'partner.other.test', ['--cross-origin-loc', '{site:partner.other.test}/co-verify.html']),
        embeddedClient('nofallback', 'plain.other.test'),
      ],
    });
    domain = `auth.example.test:${s.port}`;
  });
  after(() => s && s.stop());

  test('on a sibling subdomain: login, signup, changePassword and the errors apps show', async () => {
    const ctx = await s.profile();
    const page = await ctx.newPage();
    const app = `${s.site('shop.example.test')}/js.html`;
    await page.goto(app);
    let r = await webAuthCall(page, domain, 'shop', 'login', { username: EMAIL, password: 'not the password' });
    assert.deepEqual([r.code, r.description], ['access_denied', 'Wrong email or password.']);
    r = await webAuthCall(page, domain, 'shop', 'signup', { email: 'new@example.com', password: 'short' });
    assert.equal(r.name, 'PasswordStrengthError');
    assert.equal(r.code, 'invalid_password');
    assert.ok(r.policy, 'the policy text the app shows');
    r = await webAuthCall(page, domain, 'shop', 'signup', { email: 'new@example.com', password: 'a long new password', user_metadata: { plan: 'free' } });
    assert.ok(r.ok, JSON.stringify(r));
    assert.equal(r.res.email, 'new@example.com');
    r = await webAuthCall(page, domain, 'shop', 'signup', { email: EMAIL, password: 'a long new password' });
    assert.deepEqual([r.code, r.description], ['user_exists', 'The user already exists.']);
    // The new account signs in at once, unverified.
    let out = await embeddedLogin(page, domain, 'shop', 'new@example.com', 'a long new password');
    assert.deepEqual([out.result.email, out.result.verified], ['new@example.com', false]);
    // Alice, through the ticket: verified, amr pwd, no login box on the way.
    await page.goto(app);
    out = await embeddedLogin(page, domain, 'shop', EMAIL, PASSWORD);
    assert.deepEqual([out.result.email, out.result.verified, out.result.amr], [EMAIL, true, ['pwd']]);
    assert.equal(out.tickets.length, 1);
    // The ticket again (replayed), and under another client: refused.
    await page.goto(out.tickets[0]);
    await page.waitForURL(/js\.html#/);
    assert.equal((await parseHash(page, domain, 'shop')).error, 'access_denied');
    await page.goto(app);
    r = await webAuthCall(page, domain, 'shop', 'changePassword', { email: EMAIL });
    assert.deepEqual(r, { ok: true, res: "We've just sent you an email to reset your password." });
    r = await webAuthCall(page, domain, 'shop', 'changePassword', { email: 'nobody@example.com' });
    assert.equal(r.res, "We've just sent you an email to reset your password.");
    // A throttled account: too_many_attempts, in the callback.
    for (let i = 0; i < 30; i++) {
      r = await webAuthCall(page, domain, 'shop', 'login', { username: 'new@example.com', password: 'wrong password' });
      if (r.code === 'too_many_attempts') break;
    }
    assert.equal(r.code, 'too_many_attempts', JSON.stringify(r));
    await ctx.close();
  });

  test('on another site: the ticket is bound to its client; the fallback page asks the app when Sesame\'s cookie is missing; a clear error when the browser blocks third-party cookies', async () => {
    // Third-party cookies allowed: the verifier cookie comes back at /authorize.
    let ctx = await s.profile({ thirdPartyCookies: true });
    let page = await ctx.newPage();
    const partner = `${s.site('partner.other.test')}/js.html`;
    await page.goto(partner);
    let out = await embeddedLogin(page, domain, 'partner', EMAIL, PASSWORD);
    assert.equal(out.result.email, EMAIL);
    // The same ticket for another client: refused.
    const other = out.tickets[0].replace('client_id=partner', 'client_id=nofallback')
      .replace(encodeURIComponent(`${s.site('partner.other.test')}/js.html`), encodeURIComponent(`${s.site('plain.other.test')}/js.html`));
    await page.goto(other);
    await page.waitForURL(/js\.html#/);
    assert.equal((await parseHash(page, domain, 'nofallback')).error, 'access_denied');
    // Sesame's cookie missing at /authorize (as in a browser that refused
    // it): the fallback page frames the app's crossOriginVerification() page,
    // which hands over the verifier auth0-js stored, and the sign-in goes on.
    let held = null;
    await page.route(/\/authorize\?.*login_ticket=/, (route) => { held = route.request().url(); return route.fulfill({ status: 204 }); }, { times: 1 });
    await page.goto(partner);
    webAuthCall(page, domain, 'partner', 'login', { username: EMAIL, password: PASSWORD }).catch(() => null);
    for (let i = 0; i < 100 && !held; i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(held, 'auth0-js went to /authorize with the ticket');
    await ctx.clearCookies({ name: /_co$/ });
    const frames = [];
    page.on('framenavigated', (f) => frames.push(f.url()));
    await page.goto(held);
    for (let i = 0; i < 200 && !/js\.html#/.test(page.url()); i++) await new Promise((r) => setTimeout(r, 100));
    assert.ok(frames.some((u) => u.includes('/co-verify.html#origin=')), `the fallback framed the app's page: ${frames}`);
    assert.equal((await parseHash(page, domain, 'partner')).email, EMAIL);
    await ctx.close();

    // Third-party cookies blocked: neither the cookie nor the app's framed
    // page can vouch for the browser; the app hears why.
    ctx = await s.profile({ thirdPartyCookies: false });
    page = await ctx.newPage();
    await page.goto(`${s.site('plain.other.test')}/js.html`);
    out = await embeddedLogin(page, domain, 'nofallback', EMAIL, PASSWORD);
    assert.equal(out.result.error, 'access_denied');
    assert.match(out.result.description, /third-party cookies/);
    await ctx.close();
  });
});

/** The reference API: a DPoP-bound token and its proof (RFC 9449 §7). */
function dpopApi(s, audience) {
  const seen = new Set();
  let jwks;
  return async (req, res) => {
    const cors = { 'access-control-allow-origin': req.headers.origin || '*', 'access-control-allow-headers': 'authorization, dpop', 'access-control-expose-headers': 'www-authenticate' };
    if (req.method === 'OPTIONS') { res.writeHead(204, cors); return res.end(); }
    const deny = (why) => { res.writeHead(401, { ...cors, 'www-authenticate': `DPoP error="invalid_token", error_description="${why}"`, 'content-type': 'application/json' }); res.end(JSON.stringify({ error: why })); };
    try {
      jwks = jwks || jose.createLocalJWKSet(await (await fetch(`http://127.0.0.1:${s.sesamePort}/jwks`)).json());
      const [scheme, token] = (req.headers.authorization || '').split(' ');
      if (scheme !== 'DPoP') return deny('not DPoP');
      const { payload: at } = await jose.jwtVerify(token, jwks, { issuer: s.issuer, audience });
      const proof = req.headers.dpop;
      const { jwk, alg } = jose.decodeProtectedHeader(proof);
      const { payload: p } = await jose.jwtVerify(proof, await jose.importJWK(jwk, alg), { typ: 'dpop+jwt', maxTokenAge: '5m' });
      const ath = jose.base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))));
      if (p.htm !== req.method || p.htu !== `https://api.example.test:${s.port}${req.url.split('?')[0]}` || p.ath !== ath) return deny('proof does not match');
      if (at.cnf?.jkt !== await jose.calculateJwkThumbprint(jwk, 'sha256')) return deny('cnf.jkt is not the proof key');
      if (seen.has(p.jti)) return deny('proof replayed');
      seen.add(p.jti);
      res.writeHead(200, { ...cors, 'content-type': 'application/json' });
      res.end(JSON.stringify({ sub: at.sub, jkt: at.cnf.jkt }));
    } catch (e) {
      deny(String(e.code || e.message));
    }
  };
}

describe('DPoP with auth0-spa-js and oidc-client-ts (nonces required)', () => {
  let s;
  let api;
  before(async () => {
    let handler = () => {};
    s = await startStack({
      authHost: 'auth.example.test',
      config: '[dpop]\nrequire_nonce = true\n',
      api: (req, res) => handler(req, res),
      clients: [
        ['--name', 'Games', '--id', 'games', '--public', '--first-party', '--redirect-uri', '{site:games.example.test}/spa.html',
          '--web-origin', '{site:games.example.test}', '--grant-type', 'authorization_code', 'refresh_token',
          '--id-token-alg', 'RS256', '--require-dpop'],
        ['--name', 'Forum', '--id', 'forum', '--public', '--first-party', '--redirect-uri', '{site:forum.example.test}/oidc.html',
          '--web-origin', '{site:forum.example.test}', '--grant-type', 'authorization_code', 'refresh_token', '--require-dpop'],
      ],
    });
    handler = dpopApi(s, 'games');
    api = `https://api.example.test:${s.port}`;
  });
  after(() => s && s.stop());

  test('auth0-spa-js useDpop: tokens, rotation, silent renewal, the API, and a stolen refresh token', async () => {
    const ctx = await s.profile();
    const page = await ctx.newPage();
    const opts = {
      domain: `auth.example.test:${s.port}`, clientId: 'games', useDpop: true, useRefreshTokens: true, cacheLocation: 'localstorage',
      authorizationParams: { redirect_uri: `${s.site('games.example.test')}/spa.html` },
    };
    await page.goto(opts.authorizationParams.redirect_uri);
    page.evaluate(async (o) => (await auth0.createAuth0Client(o)).loginWithRedirect(), opts).catch(() => {});
    await page.waitForURL(/\/login\?req=/);
    await signIn(page);
    await page.waitForURL(/spa\.html\?code=/);
    const r = await page.evaluate(async ([o, api]) => {
      window.client = await auth0.createAuth0Client(o);
      await window.client.handleRedirectCallback();
      const first = await window.client.getTokenSilently({ cacheMode: 'off', detailedResponse: true });
      const second = await window.client.getTokenSilently({ cacheMode: 'off', detailedResponse: true });
      const fetcher = window.client.createFetcher({ dpopNonceId: 'api', baseUrl: api });
      const me = await (await fetcher.fetchWithAuth('/me')).json();
      const rt = Object.entries(localStorage).map(([, v]) => { try { return JSON.parse(v).body?.refresh_token; } catch { return null; } }).find(Boolean);
      // The iframe path (prompt=none with dpop_jkt) with the same key.
      const silent = await auth0.createAuth0Client({ ...o, useRefreshTokens: false, cacheLocation: 'memory' });
      const viaFrame = await silent.getTokenSilently({ cacheMode: 'off', detailedResponse: true });
      return { first, second, me, rt, viaFrame, proof: await window.client.generateDpopProof({ url: `${o.domainUrl}/userinfo`, method: 'GET', accessToken: second.access_token }) };
    }, [{ ...opts, domainUrl: `https://auth.example.test:${s.port}` }, api]);
    const jkt = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url')).cnf?.jkt;
    assert.ok(jkt(r.first.access_token), 'bound: cnf.jkt');
    assert.equal(jkt(r.second.access_token), jkt(r.first.access_token), 'the same key after rotation');
    assert.equal(jkt(r.viaFrame.access_token), jkt(r.first.access_token), 'silent renewal by iframe is bound too');
    assert.equal(r.me.jkt, jkt(r.first.access_token), 'the API checked cnf.jkt against the proof');
    // Userinfo with the SDK's proof; the same proof again is a replay.
    const ui = (proof) => fetch(`http://127.0.0.1:${s.sesamePort}/userinfo`, { headers: { authorization: `DPoP ${r.second.access_token}`, dpop: proof, 'x-forwarded-proto': 'https' } });
    // Sesame wants its nonce first (require_nonce): the 401 carries one.
    const first = await ui(r.proof);
    assert.equal(first.status, 401);
    assert.match(first.headers.get('www-authenticate'), /use_dpop_nonce/);
    // A stolen refresh token, used without the key: refused.
    assert.ok(r.rt, 'the refresh token, as a thief would copy it from storage');
    const steal = await fetch(`http://127.0.0.1:${s.sesamePort}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'games', refresh_token: r.rt }),
    });
    assert.equal((await steal.json()).error, 'invalid_request', 'require_dpop: no proof, nothing');
    const thief = await jose.generateKeyPair('ES256', { extractable: true });
    const thiefProof = await new jose.SignJWT({ htm: 'POST', htu: `https://auth.example.test:${s.port}/oauth/token`, jti: crypto.randomUUID(), iat: Math.floor(Date.now() / 1000), nonce: first.headers.get('dpop-nonce') })
      .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: await jose.exportJWK(thief.publicKey) }).sign(thief.privateKey);
    const stolen = await fetch(`http://127.0.0.1:${s.sesamePort}/oauth/token`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: thiefProof, 'x-forwarded-proto': 'https' },
      body: new URLSearchParams({ grant_type: 'refresh_token', client_id: 'games', refresh_token: r.rt }),
    });
    assert.equal((await stolen.json()).error, 'invalid_dpop_proof', 'another key: refused');
    // The owner keeps refreshing: the thief's attempts spent nothing.
    const again = await page.evaluate(async () => (await window.client.getTokenSilently({ cacheMode: 'off', detailedResponse: true })).access_token);
    assert.equal(jkt(again), jkt(r.first.access_token));
    // A proof replayed at the API is refused.
    const replay = await page.evaluate(async ([api]) => {
      const token = await window.client.getTokenSilently();
      const proof = await window.client.generateDpopProof({ url: `${api}/me`, method: 'GET', accessToken: token });
      const call = () => fetch(`${api}/me`, { headers: { authorization: `DPoP ${token}`, dpop: proof } }).then((x) => x.status);
      return [await call(), await call()];
    }, [api]);
    assert.deepEqual(replay, [200, 401]);
    await ctx.close();
  });

  test('oidc-client-ts with a DPoP store: sign-in, refresh, userinfo through the nonce', async () => {
    const ctx = await s.profile();
    const page = await ctx.newPage();
    const settings = {
      authority: s.issuer, client_id: 'forum', redirect_uri: `${s.site('forum.example.test')}/oidc.html`,
      scope: 'openid email offline_access', loadUserInfo: false,
    };
    await page.goto(settings.redirect_uri);
    page.evaluate((st) => new oidc.UserManager({ ...st, dpop: { store: new oidc.IndexedDbDPoPStore(), bind_authorization_code: true } }).signinRedirect(), settings).catch(() => {});
    await page.waitForURL(/\/login\?req=/);
    await signIn(page);
    await page.waitForURL(/oidc\.html\?code=/);
    const r = await page.evaluate(async (st) => {
      const mgr = new oidc.UserManager({ ...st, dpop: { store: new oidc.IndexedDbDPoPStore(), bind_authorization_code: true } });
      const user = await mgr.signinRedirectCallback();
      const renewed = await mgr.signinSilent();
      const url = `${st.authority}userinfo`;
      const call = async (nonce) => fetch(url, { headers: { authorization: `DPoP ${renewed.access_token}`, dpop: await mgr.dpopProof(url, renewed, 'GET', nonce) } });
      const first = await call();
      const nonce = first.headers.get('dpop-nonce');
      const second = await call(nonce);
      return { type: user.token_type, at: user.access_token, renewed: renewed.access_token, rotated: renewed.refresh_token !== user.refresh_token, first: first.status, nonce: !!nonce, info: await second.json() };
    }, settings);
    const jkt = (t) => JSON.parse(Buffer.from(t.split('.')[1], 'base64url')).cnf?.jkt;
    assert.equal(r.type, 'DPoP');
    assert.ok(jkt(r.at));
    assert.equal(jkt(r.renewed), jkt(r.at), 'refresh with the same key');
    assert.ok(r.rotated, 'the refresh token rotated');
    assert.deepEqual([r.first, r.nonce], [401, true], 'userinfo asks for its nonce');
    assert.equal(r.info.email, EMAIL);
    await ctx.close();
  });
});
