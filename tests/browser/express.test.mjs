// Auth0's server-side SDK for Express, express-openid-connect (pinned), as its
// quickstart configures it (issuerBaseURL, baseURL, clientID, secret: an ID
// token by form_post) and in its code-flow configuration (clientSecret +
// response_type code), against Sesame with nothing changed but the domain.
// Sign in, req.oidc.user, requiresAuth(), and logout with auth0Logout
// (→ /v2/logout) and idpLogout (→ end_session_endpoint). Then a reference
// API built with express-jwt + jwks-rsa checks the tokens Sesame issues for it.
// Plain http on loopback: the SDK allows http issuers for local development.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { createHash, randomBytes } from 'node:crypto';

import express from 'express';
import { expressjwt } from 'express-jwt';
import openid from 'express-openid-connect';
import jwksRsa from 'jwks-rsa';
import { chromium } from 'playwright-core';

import { EMAIL, freePort, launch, signIn } from './harness.mjs';

const { auth, requiresAuth } = openid;
const SECRET = 'webcode-client-secret-0123456789abcdef';
const API = 'https://api.example.com';

/**
 * The reference API, built as Sesame's users build theirs: express-jwt +
 * jwks-rsa, the token from the Authorization header or an access_token /
 * id_token cookie; 401 for a bad or expired token or another audience, 403
 * for a missing permission. `/later/*` runs two hours in the future, so a
 * token that is valid now is expired there.
 */
async function referenceApi(port, issuer) {
  const a = express();
  const check = (offset) => expressjwt({
    secret: jwksRsa.expressJwtSecret({ jwksUri: `${issuer}/jwks`, cache: true, rateLimit: true }),
    audience: API,
    issuer,
    algorithms: ['RS256', 'ES256'],
    clockTimestamp: offset ? () => Math.floor(Date.now() / 1000) + offset : undefined,
    getToken: (req) => {
      const h = req.headers.authorization || '';
      if (h.startsWith('Bearer ')) return h.slice(7);
      const cookies = Object.fromEntries((req.headers.cookie || '').split('; ').filter(Boolean).map((c) => c.split('=')));
      return cookies.access_token || cookies.id_token;
    },
  });
  const need = (p) => (req, res, next) => ((req.auth.permissions || []).includes(p) ? next() : res.status(403).json({ error: 'forbidden', missing: p }));
  a.get('/users', check(0), need('read:users'), (req, res) => res.json({ sub: req.auth.sub, permissions: req.auth.permissions }));
  a.delete('/users/1', check(0), need('delete:users'), (req, res) => res.status(204).end());
  a.get('/later/users', check(7200), need('read:users'), (req, res) => res.json({ ok: true }));
  a.get('/cb', (req, res) => res.send('ok'));
  a.use((err, req, res, next) => (err.name === 'UnauthorizedError' ? res.status(401).json({ error: err.code }) : next(err)));
  return new Promise((resolve) => {
    const srv = a.listen(port, '127.0.0.1', () => resolve(srv));
  });
}

/** An Express app with express-openid-connect, on its own port. */
async function app(port, config) {
  const a = express();
  a.use(auth(config));
  a.get('/', (req, res) => res.json({ authenticated: req.oidc.isAuthenticated(), user: req.oidc.user || null }));
  a.get('/profile', requiresAuth(), (req, res) => res.json({ user: req.oidc.user }));
  const server = await new Promise((resolve) => {
    const s = a.listen(port, '127.0.0.1', () => resolve(s));
  });
  return server;
}

describe('Express: express-openid-connect apps and an express-jwt API', () => {
  const cleanup = [];
  let issuer;
  let quick;
  let code;
  let browser;
  let sesame;
  let refApi;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-express-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const [sesamePort, quickPort, codePort, apiPort] = [await freePort(), await freePort(), await freePort(), await freePort()];
    refApi = `http://127.0.0.1:${apiPort}`;
    issuer = `http://127.0.0.1:${sesamePort}`;
    quick = `http://127.0.0.1:${quickPort}`;
    code = `http://127.0.0.1:${codePort}`;
    sesame = await launch({
      dir,
      name: 'sesame',
      issuer,
      port: sesamePort,
      site: (h) => h,
      session: {},
      config: null,
      users: [{ email: EMAIL, name: 'Alice Example' }],
      clients: [
        // The quickstart: no client secret, an ID token by form_post.
        ['--name', 'Web', '--id', 'web', '--public', '--first-party', '--grant-type', 'implicit',
          '--redirect-uri', `${quick}/callback`, '--post-logout-redirect-uri', quick, '--id-token-alg', 'RS256'],
        {
          args: ['--name', 'Web (code)', '--id', 'webcode', '--first-party', '--secret-stdin',
            '--grant-type', 'authorization_code', 'refresh_token', 'client_credentials',
            '--redirect-uri', `${code}/callback`, '--post-logout-redirect-uri', code, '--id-token-alg', 'RS256'],
          secret: SECRET,
        },
        ['--name', 'Dashboard', '--id', 'dash', '--public', '--first-party', '--grant-type', 'authorization_code',
          '--redirect-uri', `${refApi}/cb`, '--id-token-alg', 'RS256'],
      ],
    }, cleanup);
    // An admin's set-up: an API, a role with some of its permissions, a group
    // holding the role, the user in the group, the client allowed the API.
    const cli = (...args) => sesame.cli(args);
    cli('api', 'add', '--identifier', API, '--name', 'Users API', '--permission', 'read:users', 'write:users', 'delete:users', '--alg', 'RS256');
    cli('role', 'add', 'support', '--api', API, '--permission', 'read:users');
    cli('group', 'add', 'helpdesk');
    cli('group', 'grant-role', 'helpdesk', 'support');
    cli('group', 'add-member', 'helpdesk', EMAIL);
    cli('client', 'update', 'dash', '--api', API, '--permission', 'read:users', 'delete:users');
    const r = await referenceApi(apiPort, issuer);
    cleanup.push(() => new Promise((res) => r.close(res)));
    const common = { issuerBaseURL: issuer, secret: 'a-long-random-cookie-secret-for-the-test-0123456789', authRequired: false };
    const q = await app(quickPort, { ...common, baseURL: quick, clientID: 'web', auth0Logout: true });
    cleanup.push(() => new Promise((r) => q.close(r)));
    const c = await app(codePort, {
      ...common,
      baseURL: code,
      clientID: 'webcode',
      clientSecret: SECRET,
      authorizationParams: { response_type: 'code', scope: 'openid profile email' },
      idpLogout: true,
    });
    cleanup.push(() => new Promise((r) => c.close(r)));
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync'],
    });
    cleanup.push(() => browser.close());
  });
  after(async () => {
    for (const f of cleanup.reverse()) await Promise.resolve().then(f).catch(() => {});
  });

  async function json(page) {
    return JSON.parse(await page.locator('body').innerText());
  }

  test('quickstart (ID token by form_post): sign in, requiresAuth, auth0Logout through /v2/logout', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const posted = [];
    page.on('request', (r) => r.isNavigationRequest() && r.method() === 'POST' && posted.push(r.url()));
    await page.goto(`${quick}/profile`);
    await page.waitForURL(/\/login\?req=/);
    await signIn(page);
    await page.waitForURL(`${quick}/profile`);
    const { user } = await json(page);
    assert.equal(user.email, EMAIL);
    assert.ok(posted.includes(`${quick}/callback`), 'the ID token came by form_post');
    await page.goto(`${quick}/logout`);
    await page.waitForURL((u) => u.href.startsWith(quick));
    assert.equal((await json(page)).authenticated, false);
    // Sesame's session ended too: the next sign-in shows the login box.
    await page.goto(`${quick}/profile`);
    await page.waitForURL(/\/login\?req=/);
    await ctx.close();
  });

  test('code flow (clientSecret + response_type code): sign in, idpLogout through end_session_endpoint', async () => {
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const seen = [];
    page.on('request', (r) => r.isNavigationRequest() && seen.push(r.url()));
    await page.goto(`${code}/profile`);
    await page.waitForURL(/\/login\?req=/);
    await signIn(page);
    await page.waitForURL(`${code}/profile`);
    assert.equal((await json(page)).user.email, EMAIL);
    await page.goto(`${code}/logout`);
    await page.waitForURL((u) => u.href.startsWith(code) && !u.pathname.startsWith('/logout'));
    assert.ok(seen.some((u) => u.startsWith(`${issuer}/logout?`) && u.includes('id_token_hint=')), 'RP-initiated logout');
    assert.equal((await json(page)).authenticated, false);
    await page.goto(`${code}/profile`);
    await page.waitForURL(/\/login\?req=/);
    await ctx.close();
  });

  test('a reference API (express-jwt + jwks-rsa) checks audience, expiry and permissions', async () => {
    // The user's token for the API: code + PKCE through the login box.
    const ctx = await browser.newContext();
    const page = await ctx.newPage();
    const verifier = randomBytes(32).toString('base64url');
    const challenge = createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({
      client_id: 'dash', redirect_uri: `${refApi}/cb`, response_type: 'code', scope: 'openid read:users delete:users',
      audience: API, code_challenge: challenge, code_challenge_method: 'S256', state: 's',
    });
    await page.goto(`${issuer}/authorize?${q}`);
    await page.waitForURL(/\/login\?req=/);
    await signIn(page);
    await page.waitForURL((u) => u.href.startsWith(`${refApi}/cb`));
    const code = new URL(page.url()).searchParams.get('code');
    await ctx.close();
    const token = await fetch(`${issuer}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', client_id: 'dash', code, redirect_uri: `${refApi}/cb`, code_verifier: verifier }),
    }).then((r) => r.json());
    assert.ok(token.access_token, JSON.stringify(token));
    // Requested read and delete; holds read (through the group's role) only.
    assert.equal(token.scope, 'openid read:users');
    const call = (path, t, init = {}) => fetch(`${refApi}${path}`, { ...init, headers: { authorization: `Bearer ${t}` } });
    const ok = await call('/users', token.access_token);
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).permissions, ['read:users']);
    assert.equal((await call('/users/1', token.access_token, { method: 'DELETE' })).status, 403, 'missing permission');
    const cookie = await fetch(`${refApi}/users`, { headers: { cookie: `access_token=${token.access_token}` } });
    assert.equal(cookie.status, 200, 'the token from a cookie');
    assert.equal((await call('/later/users', token.access_token)).status, 401, 'expired');
    // A token for another audience (the client's own, and the ID token) is refused.
    assert.equal((await call('/users', token.id_token)).status, 401, 'an ID token is for the client');
    const machine = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`webcode:${SECRET}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    }).then((r) => r.json());
    assert.equal((await call('/users', machine.access_token || 'x')).status, 401, 'another audience');
    assert.equal((await call('/users', `${token.access_token.slice(0, -4)}AAAA`)).status, 401, 'a bad signature');
  });
});
