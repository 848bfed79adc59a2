// Second factors in headless Chromium.
//
// Passkeys: Sesame on http://localhost (a secure context whose host name is a
// valid WebAuthn relying party) with Chromium's virtual authenticator over the
// DevTools protocol (CTAP2, internal transport, resident keys, user
// verification): a passkey registered from the account page, used as a
// second factor after the password, and for a passwordless sign-in (the
// browser's autofill, which the virtual authenticator completes at once, and
// the button); user verification off, and an authenticator whose passkey
// Sesame never registered, refused.
//
// Step-up: auth0-spa-js on games.example.test asks for
// `acr_values=…/multi-factor`; the user enrols an authenticator app on the
// way (codes computed here, RFC 6238), gets `acr`/`amr` it can check, keeps
// the level through silent renewal, and `max_age` asks for the factor again.
//
// axe-core finds no violations on the login box's pages at desktop and phone
// widths.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium } from 'playwright-core';

import { EMAIL, PASSWORD, freePort, launch, signIn, startStack } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const AXE = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
const MFA = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';

/** RFC 6238 (SHA-1, 6 digits, 30 s) for a base32 secret at `t` seconds. */
function totp(secret, t = Date.now() / 1000) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const bytes = [];
  for (const c of secret.replace(/=+$/, '').toUpperCase()) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      bytes.push((value >>> (bits - 8)) & 255);
      bits -= 8;
    }
  }
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(t / 30)));
  const h = crypto.createHmac('sha1', Buffer.from(bytes)).update(counter).digest();
  const o = h[h.length - 1] & 15;
  return String((h.readUInt32BE(o) & 0x7fffffff) % 1e6).padStart(6, '0');
}

/** axe-core on the page at desktop and phone widths: no violations. */
async function axe(page, what) {
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    const r = await page.evaluate(`${AXE}\n;axe.run(document, { resultTypes: ['violations'] })`);
    const found = r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    assert.deepEqual(found, [], `${what} at ${width}px`);
  }
}

function claimsOf(idToken) {
  return JSON.parse(Buffer.from(idToken.split('.')[1], 'base64url').toString());
}

describe('passkeys (virtual authenticator, http://localhost)', () => {
  const cleanup = [];
  let base;
  let cli;
  let browser;
  let page;
  let cdp;
  let authenticatorId;
  let dir;

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-passkeys-'));
    cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const port = await freePort();
    base = `http://localhost:${port}`;
    const s = await launch({
      dir, name: 'sesame', issuer: `${base}/`, site: () => base, session: {}, port,
      users: [{ email: EMAIL, name: 'Alice Example' }],
      clients: [['--name', 'Vault', '--id', 'vault', '--public', '--first-party', '--require-mfa',
        '--redirect-uri', `${base}/`, '--grant-type', 'authorization_code', 'refresh_token']],
    }, cleanup);
    cli = s.cli;
    cleanup.push(() => s.server.kill('SIGTERM'));
    if (s.pg) cleanup.push(s.pg.drop);
    browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ['--no-sandbox', '--disable-gpu'] });
    cleanup.push(() => browser.close());
    page = await browser.newPage();
    ({ cdp, authenticatorId } = await authenticator(page));
  });

  after(async () => {
    for (const f of cleanup.reverse()) await Promise.resolve().then(f).catch(() => {});
  });

  async function authenticator(p) {
    const session = await p.context().newCDPSession(p);
    await session.send('WebAuthn.enable', { enableUI: false });
    const { authenticatorId: id } = await session.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2', ctap2Version: 'ctap2_1', transport: 'internal', hasResidentKey: true,
        hasUserVerification: true, isUserVerified: true, automaticPresenceSimulation: true,
      },
    });
    return { cdp: session, authenticatorId: id };
  }

  /** An authorization request for `vault` (which requires a second factor) and its PKCE verifier. */
  function authorize() {
    const verifier = crypto.randomBytes(32).toString('base64url');
    const challenge = crypto.createHash('sha256').update(verifier).digest('base64url');
    const q = new URLSearchParams({
      client_id: 'vault', redirect_uri: `${base}/`, response_type: 'code', scope: 'openid email',
      code_challenge: challenge, code_challenge_method: 'S256', state: 'st',
    });
    return { url: `${base}/authorize?${q}`, verifier };
  }

  async function redeem(back, verifier) {
    const code = new URL(back).searchParams.get('code');
    assert.ok(code, `a code in ${back}`);
    const r = await fetch(`${base}/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code, redirect_uri: `${base}/`, client_id: 'vault', code_verifier: verifier }),
    });
    assert.equal(r.status, 200);
    return claimsOf((await r.json()).id_token);
  }

  const back = (u) => u.href.startsWith(`${base}/?`) && u.searchParams.has('code');

  /** The login box's autofill request (on page load) fails, as if the user ignored it. */
  async function noAutofill(p) {
    let first = true;
    await p.route('**/login/passkey/options', (r) => {
      if (first) {
        first = false;
        return r.abort();
      }
      return r.continue();
    });
  }

  function audit(type) {
    return JSON.parse(cli(['--json', 'audit', 'search', '--type', type])).events;
  }

  test('a passkey added on the account page, with recovery codes shown once', async () => {
    await page.goto(`${base}/account`);
    await page.waitForURL(/\/login\?req=/);
    await axe(page, 'the login box with "Sign in with a passkey"');
    await signIn(page);
    await page.waitForURL(/\/account$/);
    await axe(page, 'the account page');
    await page.fill('#passkey-name', 'Laptop');
    await page.click('#add-passkey');
    await page.waitForURL(/\/account\/factors\/codes/);
    assert.equal(await page.locator('#recovery-codes li').count(), 10);
    await axe(page, 'the recovery codes');
    await page.click('#continue');
    await page.waitForURL(/\/account/);
    assert.match(await page.textContent('#factors'), /Laptop/);
    const { credentials } = await cdp.send('WebAuthn.getCredentials', { authenticatorId });
    assert.equal(credentials.length, 1);
    assert.equal(credentials[0].isResidentCredential, true, 'discoverable, so it also signs in without a password');
    assert.ok(audit('mfa_enrolled').some((e) => e.method === 'passkey'));
  });

  test('the passkey as a second factor after the password', async () => {
    await page.context().clearCookies();
    const a = authorize();
    await noAutofill(page);
    await page.goto(a.url);
    await signIn(page);
    await page.unroute('**/login/passkey/options');
    await page.waitForURL(/\/login\/factor\?req=/);
    await axe(page, 'the second-factor page');
    await page.click('#passkey-check');
    await page.waitForURL(back);
    const c = await redeem(page.url(), a.verifier);
    assert.deepEqual(c.amr, ['pwd', 'hwk', 'user', 'mfa']);
    assert.equal(c.acr, 'phr');
    assert.ok(audit('mfa_challenge_success').some((e) => e.method === 'hwk'));

    // This session proved a second factor just now: it may add an
    // authenticator app from the account page.
    await page.goto(`${base}/account/factors/totp`);
    await axe(page, 'adding an authenticator app');
    const secret = (await page.textContent('#totp-secret')).trim();
    await page.fill('#factor-name', 'Phone');
    await page.fill('#code', totp(secret));
    await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
    assert.match(page.url(), /done=factor_added/);
    assert.match(await page.textContent('#factors'), /Phone/);
    assert.match(await page.textContent('#factors'), /Laptop/);
  });

  test('the other login box pages pass axe', async () => {
    await page.context().clearCookies();
    await noAutofill(page);
    await page.goto(authorize().url);
    await page.waitForURL(/\/login\?req=/);
    const req = new URL(page.url()).searchParams.get('req');
    await page.unroute('**/login/passkey/options');
    for (const p of [`/signup?req=${req}`, `/forgot-password?req=${req}`, `/verify-email/resend?req=${req}`]) {
      await page.goto(`${base}${p}`);
      await axe(page, p);
    }
  });

  test('passwordless: the passkey alone signs in, by autofill and by the button', async () => {
    // The browser's autofill (conditional mediation): the authenticator
    // answers as soon as the login box asks.
    await page.context().clearCookies();
    let a = authorize();
    await page.goto(a.url);
    await page.waitForURL(back);
    let c = await redeem(page.url(), a.verifier);
    assert.deepEqual(c.amr, ['hwk', 'user', 'mfa']);
    assert.equal(c.acr, 'phr');
    // "Sign in with a passkey".
    await page.context().clearCookies();
    a = authorize();
    await noAutofill(page);
    await page.goto(a.url);
    await page.waitForURL(/\/login\?req=/);
    await page.click('#passkey-signin');
    await page.waitForURL(back);
    await page.unroute('**/login/passkey/options');
    c = await redeem(page.url(), a.verifier);
    assert.ok(!c.amr.includes('pwd'), `${c.amr}`);
    assert.deepEqual(c.amr, ['hwk', 'user', 'mfa']);
    assert.equal(c.acr, 'phr');
    assert.ok(audit('passkey_login').length >= 2);
  });

  test('without user verification a passkey does not sign in', async () => {
    await page.context().clearCookies();
    await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: false });
    try {
      await noAutofill(page);
      await page.goto(authorize().url);
      await page.waitForURL(/\/login\?req=/);
      await page.click('#passkey-signin');
      await page.waitForSelector('#passkey-error:not([hidden])');
      assert.match(page.url(), /\/login\?req=/, 'still on the login box');
      assert.equal((await page.context().cookies()).filter((k) => k.name === '__Host-sesame' || k.name === 'sesame').length, 0);
    } finally {
      await page.unroute('**/login/passkey/options');
      await cdp.send('WebAuthn.setUserVerified', { authenticatorId, isUserVerified: true });
    }
  });

  test('a passkey Sesame never registered is refused', async () => {
    const other = await browser.newPage();
    cleanup.push(() => other.close());
    const { cdp: c2, authenticatorId: id2 } = await authenticator(other);
    const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await c2.send('WebAuthn.addCredential', {
      authenticatorId: id2,
      credential: {
        credentialId: crypto.randomBytes(32).toString('base64'),
        isResidentCredential: true,
        rpId: 'localhost',
        privateKey: privateKey.export({ format: 'der', type: 'pkcs8' }).toString('base64'),
        userHandle: crypto.randomBytes(16).toString('base64'),
        signCount: 0,
      },
    });
    await other.goto(authorize().url);
    await other.waitForURL(/\/login\?req=/);
    // Autofill offers it, and Sesame refuses it; so does the button.
    await other.waitForSelector('#passkey-error:not([hidden])');
    assert.match(other.url(), /\/login\?req=/);
    await other.evaluate(() => { document.getElementById('passkey-error').hidden = true; });
    await other.click('#passkey-signin');
    await other.waitForSelector('#passkey-error:not([hidden])');
    assert.match(await other.textContent('#passkey-error'), /could not be used/);
    assert.match(other.url(), /\/login\?req=/);
    assert.ok(audit('login_failure').some((e) => e.reason === 'passkey_refused'));
  });
});

describe('step-up with auth0-spa-js (games.example.test)', () => {
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
    });
    opts = {
      domain: `auth.example.test:${s.port}`,
      clientId: 'games',
      authorizationParams: { redirect_uri: `${s.site('games.example.test')}/spa.html` },
    };
  });
  after(async () => s && s.stop());

  /** loginWithRedirect with `params`; `onBox(page)` handles the login box's pages. */
  async function login(page, params, onBox) {
    await page.goto(opts.authorizationParams.redirect_uri);
    page.evaluate(async ([o, p]) => (await auth0.createAuth0Client(o)).loginWithRedirect({ authorizationParams: p }), [opts, params])
      .catch(() => {});
    await page.waitForURL((u) => /\/login(\/factor)?\?req=|spa\.html\?code=/.test(u.href));
    if (!page.url().includes('spa.html?code=')) {
      await onBox(page);
      await page.waitForURL(/spa\.html\?code=/);
    }
    return page.evaluate(async (o) => {
      window.client = await auth0.createAuth0Client(o);
      await window.client.handleRedirectCallback();
      return window.client.getIdTokenClaims();
    }, opts);
  }

  test('acr_values asks for a second factor; the app gets acr and amr; max_age asks again', async () => {
    const ctx = await s.profile();
    const page = await ctx.newPage();
    // A plain sign-in: one factor, no acr.
    let claims = await login(page, {}, signIn);
    assert.deepEqual(claims.amr, ['pwd']);
    assert.equal(claims.acr, undefined);

    // Step-up: the session exists; the user sets up an authenticator app on the way.
    let secret;
    claims = await login(page, { acr_values: MFA }, async (p) => {
      await p.waitForURL(/\/login\/factor\?req=/);
      await axe(p, 'the second-factor setup');
      secret = (await p.textContent('#totp-secret')).trim();
      await p.fill('#code', totp(secret));
      await Promise.all([p.waitForNavigation(), p.click('form[action*="/login/factor/enrol"] button[type=submit]')]);
      await p.waitForURL(/\/login\/factor\/codes/);
      assert.equal(await p.locator('#recovery-codes li').count(), 10);
      await p.click('#continue');
    });
    assert.equal(claims.acr, MFA);
    assert.deepEqual(claims.amr, ['pwd', 'otp', 'mfa']);

    // Silent renewal keeps the session's level (and its age).
    const silent = await page.evaluate(async (m) => {
      await window.client.getTokenSilently({ cacheMode: 'off', authorizationParams: { acr_values: m } });
      return window.client.getIdTokenClaims();
    }, MFA);
    assert.equal(silent.acr, MFA);
    assert.equal(silent.auth_time, claims.auth_time);
    // prompt=none never shows a page: a passkey it lacks is interaction_required.
    const err = await page.evaluate(async () => {
      try {
        await window.client.getTokenSilently({ cacheMode: 'off', authorizationParams: { acr_values: 'phr' } });
        return null;
      } catch (e) {
        return e.error;
      }
    });
    assert.equal(err, 'interaction_required');

    // max_age younger than the last proof: the password and the code again.
    await new Promise((r) => setTimeout(r, 1500));
    claims = await login(page, { acr_values: MFA, max_age: 1 }, async (p) => {
      if (p.url().includes('/login?req=')) await signIn(p);
      await p.waitForURL(/\/login\/factor\?req=/);
      await axe(p, 'the second-factor page');
      await p.fill('#code', totp(secret, Date.now() / 1000 + 30));
      await Promise.all([p.waitForNavigation(), p.click('form[action*="/login/factor?"] button[type=submit]')]);
    });
    assert.equal(claims.acr, MFA);
    assert.ok(claims.auth_time > silent.auth_time, 'a fresh sign-in');
    await ctx.close();
  });
});
