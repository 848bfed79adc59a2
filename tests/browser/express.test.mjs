// Auth0's server-side SDK for Express, express-openid-connect (pinned), as its
// quickstart configures it (issuerBaseURL, baseURL, clientID, secret: an ID
// token by form_post) and in its code-flow configuration (clientSecret +
// response_type code), against Sesame with nothing changed but the domain.
// Sign in, req.oidc.user, requiresAuth(), and logout with auth0Logout
// (→ /v2/logout) and idpLogout (→ end_session_endpoint). Plain http on
// loopback: the SDK allows http issuers for local development.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import express from 'express';
import openid from 'express-openid-connect';
import { chromium } from 'playwright-core';

import { EMAIL, freePort, launch, signIn } from './harness.mjs';

const { auth, requiresAuth } = openid;
const SECRET = 'webcode-client-secret-0123456789abcdef';

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

describe('express-openid-connect (Auth0 Express SDK)', () => {
  const cleanup = [];
  let issuer;
  let quick;
  let code;
  let browser;
  before(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-express-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const [sesamePort, quickPort, codePort] = [await freePort(), await freePort(), await freePort()];
    issuer = `http://127.0.0.1:${sesamePort}`;
    quick = `http://127.0.0.1:${quickPort}`;
    code = `http://127.0.0.1:${codePort}`;
    await launch({
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
            '--grant-type', 'authorization_code', 'refresh_token',
            '--redirect-uri', `${code}/callback`, '--post-logout-redirect-uri', code, '--id-token-alg', 'RS256'],
          secret: SECRET,
        },
      ],
    }, cleanup);
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
});
