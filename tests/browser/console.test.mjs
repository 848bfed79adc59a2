// The admin console in headless Chromium: the first administrator made from
// the one-time link `sesame serve` logs (once only); support finding a user,
// opening their history and filtering it by application and type; ending
// their sessions (auth0-spa-js's next silent renewal gets login_required);
// granting a role (the next token carries it); registering an application
// and signing in to it; read-only support (no write buttons, 403 on a write);
// a user without a console role (no console); axe-core on every console
// page at desktop and phone widths.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

import { EMAIL, PASSWORD, signIn, startStack } from './harness.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const AXE = fs.readFileSync(path.join(here, 'node_modules/axe-core/axe.min.js'), 'utf8');
const ADMIN = 'root@example.com';
const SUPPORT = 'help@example.com';

async function axe(page, what) {
  for (const [width, height] of [[1280, 900], [390, 844]]) {
    await page.setViewportSize({ width, height });
    const r = await page.evaluate(`${AXE}\n;axe.run(document, { resultTypes: ['violations'] })`);
    const found = r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    assert.deepEqual(found, [], `${what} at ${width}px`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

const gamesClient = [
  '--name', 'Games', '--id', 'games', '--public', '--first-party', '--rbac-claims',
  '--redirect-uri', '{site:games.example.test}/spa.html',
  '--web-origin', '{site:games.example.test}',
  '--grant-type', 'authorization_code', 'refresh_token',
  '--id-token-alg', 'RS256',
];

/** auth0-spa-js on `host` for `clientId`: signs in (the login box when there is no session). */
async function spaLogin(page, s, host, clientId) {
  const opts = { domain: `auth.example.test:${s.port}`, clientId, authorizationParams: { redirect_uri: `${s.site(host)}/spa.html` } };
  await page.goto(opts.authorizationParams.redirect_uri);
  page.evaluate(async (o) => (await auth0.createAuth0Client(o)).loginWithRedirect(), opts).catch(() => {});
  await page.waitForURL((u) => /\/login\?req=|spa\.html\?code=/.test(u.href));
  if (page.url().includes('/login?req=')) {
    await signIn(page);
    await page.waitForURL(/spa\.html\?code=/);
  }
  return page.evaluate(async (o) => {
    window.client = await auth0.createAuth0Client(o);
    await window.client.handleRedirectCallback();
    return { claims: await window.client.getIdTokenClaims() };
  }, opts);
}

function spaSilent(page) {
  return page.evaluate(async () => {
    try {
      await window.client.getTokenSilently({ cacheMode: 'off' });
      return { ok: true };
    } catch (e) {
      return { error: e.error };
    }
  });
}

/** Signs in on the login box as `email`. */
async function signInAs(page, email) {
  await page.waitForSelector('input[name=email]');
  await page.fill('input[name=email]', email);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}

/** Clicks and waits for the page it loads. */
async function go(page, selector) {
  await Promise.all([page.waitForNavigation(), page.click(selector)]);
}

describe('the admin console', () => {
  let s;
  let auth;

  before(async () => {
    // No client cache: an application registered in the console is used at once.
    s = await startStack({ authHost: 'auth.example.test', clients: [gamesClient], config: '[database]\nclient_cache_secs = 0\n' });
    auth = `${s.site('auth.example.test')}`;
    s.cli(['user', 'add', '--email', SUPPORT, '--name', 'Help Desk', '--email-verified', '--password-stdin'], `${PASSWORD}\n`);
    s.cli(['user', 'grant-role', SUPPORT, 'sesame-support']);
  });

  after(async () => {
    if (s) await s.stop();
  });

  test('an administrator from the first link answers for a user: history, sessions, a role, an application', async () => {
    // `sesame serve` logged the link (nobody held sesame-admin at start).
    const line = s.log().split('\n').find((l) => l.includes('setup_link'));
    assert.ok(line, 'sesame serve logs a setup link');
    const j = JSON.parse(line);
    const link = (j.fields ? j.fields.setup_link : j.setup_link).replace(/^https:\/\/[^/]+/, auth);

    const admin = await (await s.profile()).newPage();
    await admin.goto(link);
    await axe(admin, 'the first-administrator form');
    await admin.fill('#email', ADMIN);
    await admin.fill('#name', 'Root');
    await admin.fill('#password', PASSWORD);
    await go(admin, '#create-admin');
    // The console signs in through the login box, as the new administrator.
    assert.match(admin.url(), /\/login\?req=/);
    await signInAs(admin, ADMIN);
    await admin.waitForSelector('#stat-sessions');
    await axe(admin, 'the overview');
    // The link worked once.
    const again = await (await s.profile()).newPage();
    const r = await again.goto(link);
    assert.equal(r.status(), 400);
    assert.match(await again.textContent('body'), /expired or was already used/);

    // Alice signs in to Games; support then looks for her.
    const alice = await (await s.profile()).newPage();
    await spaLogin(alice, s, 'games.example.test', 'games');
    await admin.goto(`${auth}/admin/users`);
    await axe(admin, 'the users page');
    await admin.fill('#q', 'alice');
    await go(admin, 'form.search button[type=submit]');
    await go(admin, `#users a:has-text("${EMAIL}")`);
    await admin.waitForSelector('#sessions li');
    await axe(admin, "a user's page");
    // Her history, filtered by application and type.
    await go(admin, '#history-link');
    await admin.selectOption('#f-client', 'games');
    await admin.selectOption('#f-type', 'login_success');
    await go(admin, '#apply');
    const rows = await admin.$$eval('#events tr', (trs) => trs.map((t) => t.textContent));
    assert.ok(rows.length >= 1, 'her sign-in to Games is there');
    assert.ok(rows.every((t) => t.includes('login_success') && t.includes('games')), rows.join('\n'));
    await admin.click('#events tr details summary');
    assert.match(await admin.textContent('#events tr details pre'), /"client_id": "games"/);
    await axe(admin, 'the log with a record open');

    // End her sessions: Games' next silent renewal needs the login box.
    await admin.goBack();
    await admin.goto(`${auth}/admin/users`);
    await admin.fill('#q', EMAIL);
    await go(admin, 'form.search button[type=submit]');
    await go(admin, `#users a:has-text("${EMAIL}")`);
    const userPage = admin.url();
    await go(admin, '#end-all');
    assert.match(await admin.textContent('#notice'), /Every session of the user ended/);
    assert.equal((await spaSilent(alice)).error, 'login_required');

    // A role: made and granted in the console; her next token carries it.
    await admin.goto(`${auth}/admin/roles`);
    await axe(admin, 'the roles page');
    await admin.fill('#r-name', 'billing');
    await go(admin, '#create-role');
    await axe(admin, 'a role page');
    await admin.goto(userPage);
    await admin.selectOption('#grant-role', 'billing');
    await go(admin, '#grant-role-button');
    assert.match(await admin.textContent('#roles'), /billing/);
    const back = await spaLogin(alice, s, 'games.example.test', 'games');
    assert.deepEqual(back.claims.roles, ['billing'], JSON.stringify(back.claims));

    // A new application, registered in the console; she signs in to it.
    await admin.goto(`${auth}/admin/apps`);
    await axe(admin, 'the applications page');
    await go(admin, '#new-app');
    await axe(admin, 'the new-application form');
    await admin.fill('#a-name', 'Notes');
    await admin.fill('#a-id', 'notes');
    await admin.check('#a-pub');
    await admin.check('#a-first');
    await admin.fill('#a-redirect', `${s.site('notes.example.test')}/spa.html`);
    await admin.fill('#a-origins', s.site('notes.example.test'));
    await admin.selectOption('#a-alg', 'RS256');
    await go(admin, '#save-app');
    assert.equal(await admin.textContent('#client-id'), 'notes');
    await axe(admin, "an application's page");
    const notes = await alice.context().newPage();
    const signedIn = await spaLogin(notes, s, 'notes.example.test', 'notes');
    assert.equal(signedIn.claims.aud, 'notes');
    // A confidential one: its secret shown once, with a copy button.
    await admin.goto(`${auth}/admin/apps/new`);
    await admin.fill('#a-name', 'Worker');
    await admin.check('#a-conf');
    await admin.uncheck('#g-authorization_code');
    await admin.uncheck('#g-refresh_token');
    await admin.check('#g-client_credentials');
    await go(admin, '#save-app');
    assert.ok((await admin.textContent('#secret')).length >= 40);
    assert.equal(await admin.isVisible('button[data-copy=secret]'), true, 'the copy button shows with the script');
    await axe(admin, 'the secret shown once');

    // The other sections.
    for (const [p, what] of [['/admin/apis', 'the APIs page'], ['/admin/groups', 'the groups page'], ['/admin/providers', 'the providers page'], ['/admin/keys', 'the keys page'], ['/admin/log?live=1', 'the live log']]) {
      await admin.goto(`${auth}${p}`);
      await axe(admin, what);
    }
    await admin.fill('#g-name', 'staff').catch(() => {});
    await admin.goto(`${auth}/admin/groups`);
    await admin.fill('#g-name', 'staff');
    await go(admin, '#create-group');
    await axe(admin, 'a group page');
    await admin.goto(`${auth}/admin/apis`);
    await go(admin, '#apis a');
    await axe(admin, "an API's page");
    const missing = await admin.goto(`${auth}/admin/users/no-such-user`);
    assert.equal(missing.status(), 404);
    await axe(admin, 'a console message (not found)');
    await admin.goto(`${auth}/`);
    assert.ok(await admin.$('#home-console'), 'the landing page offers the console to an administrator');
    await axe(admin, 'the landing page');

    // Live mode shows a new event without a reload.
    await admin.goto(`${auth}/admin/log?live=1`);
    const before = await admin.$$eval('#events tr', (t) => t.length);
    const other = await (await s.profile()).newPage();
    await spaLogin(other, s, 'games.example.test', 'games');
    await admin.waitForFunction(
      () => [...document.querySelectorAll('#events tr.new')].some((t) => t.textContent.includes('login_success')),
      null,
      { timeout: 15000 },
    );
    assert.ok((await admin.$$eval('#events tr', (t) => t.length)) > before);
  });

  test('read-only support sees but cannot change; a user without a console role gets none', async () => {
    const help = await (await s.profile()).newPage();
    await help.goto(`${auth}/admin`);
    await signInAs(help, SUPPORT);
    await help.waitForSelector('#stat-sessions');
    await help.goto(`${auth}/admin/users?q=alice`);
    await go(help, `#users a:has-text("${EMAIL}")`);
    assert.equal(await help.$('#block'), null, 'no block button');
    assert.equal(await help.$('#end-all'), null, 'no end-sessions button');
    assert.equal(await help.$('#delete'), null, 'no delete');
    await axe(help, "a user's page for support");
    const id = help.url().split('/').pop();
    const status = await help.evaluate(async (id) => {
      const csrf = document.querySelector('input[name=csrf]').value;
      const r = await fetch(`/admin/users/${id}/block`, { method: 'POST', body: new URLSearchParams({ csrf }) });
      return r.status;
    }, id);
    assert.equal(status, 403);

    const alice = await (await s.profile()).newPage();
    await alice.goto(`${auth}/admin`);
    await signIn(alice);
    assert.match(await alice.textContent('h1'), /No access to the console/);
    await alice.goto(`${auth}/`);
    assert.equal(await alice.$('#home-console'), null);
    assert.ok(await alice.$('#home-account'));
  });
});
