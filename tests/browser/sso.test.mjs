// Single sign-on, silent authentication and single logout in headless
// Chromium, with the real auth0-spa-js, auth0-js and oidc-client-ts bundles
// configured with nothing but Sesame's domain / authority.
//
// Same-site deployment: games.example.test (auth0-spa-js), store.example.test
// (auth0-js checkSession), forum.example.test (oidc-client-ts with session
// monitoring), Sesame on auth.example.test. Cross-site deployment: Sesame on
// login.other.test with SameSite=None cookies.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { signIn, startStack } from './harness.mjs';

const HOSTILE_STATE = `</script><script>window.__pwned=1</script>"'&<>\u2028\u2029 %20+=?#ü`;

const gamesClient = (auth = 'games') => [
  '--name', 'Games', '--id', auth, '--public', '--first-party',
  '--redirect-uri', '{site:games.example.test}/spa.html',
  '--post-logout-redirect-uri', '{site:games.example.test}/spa.html',
  '--web-origin', '{site:games.example.test}',
  '--grant-type', 'authorization_code', 'refresh_token',
  // auth0-js and auth0-spa-js accept RS256 ID tokens only.
  '--id-token-alg', 'RS256',
];

const spaOptions = (s, authHost, extra = {}) => ({
  domain: `${authHost}:${s.port}`,
  clientId: 'games',
  authorizationParams: { redirect_uri: `${s.site('games.example.test')}/spa.html` },
  ...extra,
});

/** auth0-spa-js loginWithRedirect through Sesame's login box, then handleRedirectCallback. */
async function spaLogin(page, opts) {
  await page.goto(`${opts.authorizationParams.redirect_uri}`);
  page.evaluate(async (o) => (await auth0.createAuth0Client(o)).loginWithRedirect(), opts).catch(() => {});
  // The login box, or straight back when the browser already has a session.
  await page.waitForURL((u) => /\/login\?req=|spa\.html\?code=/.test(u.href));
  if (page.url().includes('/login?req=')) {
    await signIn(page);
    await page.waitForURL(/spa\.html\?code=/);
  }
  return page.evaluate(async (o) => {
    window.client = await auth0.createAuth0Client(o);
    await window.client.handleRedirectCallback();
    return { user: await window.client.getUser(), claims: await window.client.getIdTokenClaims() };
  }, opts);
}

/** auth0-spa-js getTokenSilently, bypassing its cache, with a fresh client unless `reuse`. */
function spaSilent(page, opts, reuse = false) {
  return page.evaluate(async ([o, reuse]) => {
    const c = reuse ? window.client : await auth0.createAuth0Client(o);
    const started = Date.now();
    try {
      const r = await c.getTokenSilently({ cacheMode: 'off', detailedResponse: true });
      return { ok: true, ms: Date.now() - started, accessToken: !!r.access_token, claims: await c.getIdTokenClaims() };
    } catch (e) {
      return { error: e.error, description: e.error_description, ms: Date.now() - started };
    }
  }, [opts, reuse]);
}

/** auth0-js WebAuth.checkSession (implicit `token id_token` by web_message). */
function checkSession(page, domain, options = {}) {
  return page.evaluate(([domain, options]) => new Promise((resolve) => {
    const web = new auth0.WebAuth({
      domain,
      clientID: 'store',
      redirectUri: `${location.origin}/js.html`,
      responseType: 'token id_token',
      scope: 'openid email profile',
    });
    web.checkSession(options, (err, res) => resolve(err
      ? { error: err.error, description: err.error_description }
      : { email: res.idTokenPayload.email, iss: res.idTokenPayload.iss, accessToken: !!res.accessToken, state: res.state }));
  }), [domain, options]);
}

/** Every navigation request of a page and its frames, redirects included (to prove no login box was shown). */
function navigations(page) {
  const seen = [];
  page.on('request', (r) => r.isNavigationRequest() && seen.push(r.url()));
  return seen;
}

async function until(fn, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('same-site deployment (auth.example.test)', () => {
  let s;
  let authDomain;
  before(async () => {
    s = await startStack({
      authHost: 'auth.example.test',
      clients: [
        gamesClient(),
        ['--name', 'Store', '--id', 'store', '--public', '--first-party',
          '--redirect-uri', '{site:store.example.test}/js.html',
          '--post-logout-redirect-uri', '{site:store.example.test}/js.html',
          '--web-origin', '{site:store.example.test}',
          '--grant-type', 'implicit', 'authorization_code', '--id-token-alg', 'RS256'],
        ['--name', 'Forum', '--id', 'forum', '--public', '--first-party',
          '--redirect-uri', '{site:forum.example.test}/oidc.html', '{site:forum.example.test}/silent.html',
          '--web-origin', '{site:forum.example.test}',
          '--post-logout-redirect-uri', '{site:forum.example.test}/plain.html',
          '--frontchannel-logout-uri', '{site:forum.example.test}/plain.html?frontchannel=1',
          '--grant-type', 'authorization_code', 'refresh_token'],
      ],
    });
    authDomain = `auth.example.test:${s.port}`;
  });
  after(async () => s && s.stop());

  test('sign in on games, silent on store and forum, log out on games ends them all', async () => {
    const ctx = await s.profile();
    const games = await ctx.newPage();
    const tokenCalls = [];
    games.on('request', (r) => r.url().includes('/oauth/token') && tokenCalls.push(r));
    const opts = spaOptions(s, 'auth.example.test');
    const { user, claims } = await spaLogin(games, opts);
    assert.equal(user.email, 'alice@example.com');
    assert.equal(claims.iss, s.issuer, 'Auth0 issuer form with the trailing slash');
    assert.ok(s.issuer.endsWith('/'));
    assert.ok(claims.sid);
    // The code went to /oauth/token by CORS, with the SDK's Auth0-Client header allowed by the preflight.
    const posts = tokenCalls.filter((r) => r.method() === 'POST');
    assert.equal(posts.length, 1);
    assert.equal((await posts[0].response()).status(), 200);
    assert.ok((await posts[0].allHeaders())['auth0-client'], 'Auth0-Client header sent');

    // Store, in another tab: auth0-js checkSession gets tokens through a hidden iframe, no login box.
    const store = await ctx.newPage();
    const storeNav = navigations(store);
    await store.goto(`${s.site('store.example.test')}/js.html`);
    const silent = await checkSession(store, authDomain);
    assert.equal(silent.error, undefined, JSON.stringify(silent));
    assert.equal(silent.email, 'alice@example.com');
    assert.equal(silent.iss, s.issuer);
    assert.ok(silent.accessToken);
    assert.ok(!storeNav.some((u) => u.includes('/login')), `no login box: ${storeNav}`);

    // Forum: oidc-client-ts signs in by SSO (no login box), renews silently, and watches the session.
    const forum = await ctx.newPage();
    const forumNav = navigations(forum);
    const settings = {
      authority: s.issuer,
      client_id: 'forum',
      redirect_uri: `${s.site('forum.example.test')}/oidc.html`,
      silent_redirect_uri: `${s.site('forum.example.test')}/silent.html`,
      scope: 'openid email',
      monitorSession: true,
      checkSessionIntervalInSeconds: 1,
    };
    await forum.goto(settings.redirect_uri);
    forum.evaluate((st) => new oidc.UserManager(st).signinRedirect(), settings).catch(() => {});
    await forum.waitForURL(/oidc\.html\?code=/);
    assert.ok(!forumNav.some((u) => u.includes('/login')), `SSO without a login box: ${forumNav}`);
    const forumUser = await forum.evaluate(async ([st, authOrigin]) => {
      window.checkMessages = [];
      window.addEventListener('message', (e) => {
        if (e.origin === authOrigin && typeof e.data === 'string') window.checkMessages.push(e.data);
      });
      window.mgr = new oidc.UserManager(st);
      window.signedOut = false;
      window.mgr.events.addUserSignedOut(() => { window.signedOut = true; });
      const u = await window.mgr.signinRedirectCallback();
      const renewed = await window.mgr.signinSilent();
      return { email: u.profile.email, sessionState: u.session_state, renewed: renewed.profile.email, sid: u.profile.sid };
    }, [settings, new URL(s.issuer).origin]);
    assert.equal(forumUser.email, 'alice@example.com');
    assert.equal(forumUser.renewed, 'alice@example.com');
    assert.match(forumUser.sessionState, /^[0-9a-f]{64}\.[A-Za-z0-9_-]+$/);
    // The check_session iframe answers `unchanged` while the session lives.
    const unchanged = await until(() => forum.evaluate(() => window.checkMessages.includes('unchanged')));
    assert.ok(unchanged, 'check_session iframe answered unchanged');
    assert.equal(await forum.evaluate(() => window.signedOut), false);

    // Log out on games: auth0-spa-js goes to /v2/logout, which returns without a confirmation page.
    await games.evaluate(async (o) => {
      const c = await auth0.createAuth0Client(o);
      await c.logout({ logoutParams: { returnTo: o.authorizationParams.redirect_uri } });
    }, opts).catch(() => {});
    await games.waitForURL((u) => u.href.startsWith(`${s.site('games.example.test')}/spa.html`) && !u.href.includes('code='));
    assert.ok(!games.url().includes('/logout'));
    // On the way, the signed-out page loaded forum's front-channel logout URI with iss and sid.
    const fc = s.pageRequests.filter((u) => u.searchParams.get('frontchannel') === '1');
    assert.equal(fc.length, 1, 'forum registered a front-channel URI; games and store did not');
    assert.equal(fc[0].host, new URL(s.site('forum.example.test')).host);
    assert.equal(fc[0].searchParams.get('iss'), s.issuer);
    assert.equal(fc[0].searchParams.get('sid'), forumUser.sid);

    // Store's next silent check fails with login_required, so it would send the user to the login box.
    const after = await checkSession(store, authDomain);
    assert.equal(after.error, 'login_required', JSON.stringify(after));
    // Games too.
    const gamesAfter = await spaSilent(games, opts);
    assert.equal(gamesAfter.error, 'login_required', JSON.stringify(gamesAfter));
    // Forum learns it from the check_session iframe, with no action of its own.
    const signedOut = await until(() => forum.evaluate(() => window.signedOut));
    assert.equal(signedOut, true, 'oidc-client-ts raised userSignedOut');
    assert.ok(await forum.evaluate(() => window.checkMessages.includes('changed')));
    await ctx.close();
  });

  test('a hostile state comes back byte-exact and never runs', async () => {
    const ctx = await s.profile();
    const store = await ctx.newPage();
    await store.goto(`${s.site('store.example.test')}/js.html`);
    // auth0-js accepts the message only if its state equals what it sent.
    const r = await checkSession(store, authDomain, { state: HOSTILE_STATE });
    assert.equal(r.error, 'login_required', JSON.stringify(r));
    // The raw message, read by the page itself.
    const url = `${s.issuer}authorize?` + new URLSearchParams({
      client_id: 'store',
      redirect_uri: `${s.site('store.example.test')}/js.html`,
      response_type: 'id_token',
      response_mode: 'web_message',
      prompt: 'none',
      scope: 'openid',
      nonce: 'n1',
      state: HOSTILE_STATE,
    });
    const msg = await store.evaluate((url) => new Promise((resolve) => {
      window.addEventListener('message', (e) => resolve({ origin: e.origin, data: e.data }), { once: true });
      const f = document.createElement('iframe');
      f.src = url;
      document.body.appendChild(f);
    }), url);
    assert.equal(msg.origin, new URL(s.issuer).origin);
    assert.equal(msg.data.type, 'authorization_response');
    assert.equal(msg.data.response.state, HOSTILE_STATE);
    assert.equal(msg.data.response.error, 'login_required');
    assert.equal(msg.data.response.iss, s.issuer);
    assert.equal(await store.evaluate(() => window.__pwned), undefined);
    for (const f of store.frames()) assert.equal(await f.evaluate(() => window.__pwned).catch(() => undefined), undefined);
    await ctx.close();
  });

  test('an unregistered origin never receives a message', async () => {
    const ctx = await s.profile();
    // Signed in, so a leak would carry tokens.
    const store = await ctx.newPage();
    await store.goto(`${s.site('store.example.test')}/js.html`);
    store.evaluate(([d]) => new auth0.WebAuth({ domain: d, clientID: 'store', redirectUri: `${location.origin}/js.html`, responseType: 'token id_token' }).authorize(), [authDomain]).catch(() => {});
    await store.waitForURL(/\/login\?req=/);
    await signIn(store);
    await store.waitForURL(/js\.html#/);

    const evil = await ctx.newPage();
    await evil.goto(`${s.site('evil.example.test')}/plain.html`);
    const common = { client_id: 'store', response_type: 'id_token token', response_mode: 'web_message', prompt: 'none', scope: 'openid', nonce: 'n', state: 's' };
    const urls = [
      // Its own origin as the target: refused with an error page.
      `${s.issuer}authorize?` + new URLSearchParams({ ...common, redirect_uri: `${s.site('evil.example.test')}/plain.html` }),
      // The registered origin, framed by the wrong page: frame-ancestors stops it, and the message names store's origin.
      `${s.issuer}authorize?` + new URLSearchParams({ ...common, redirect_uri: `${s.site('store.example.test')}/js.html` }),
      // The session check iframe: only registered web origins may frame it.
      `${s.issuer}check_session`,
    ];
    const got = await evil.evaluate(([urls, authOrigin]) => new Promise((resolve) => {
      const seen = [];
      window.addEventListener('message', (e) => seen.push({ origin: e.origin, data: e.data }));
      for (const u of urls) {
        const f = document.createElement('iframe');
        f.src = u;
        f.onload = () => { try { f.contentWindow.postMessage('store x.y', authOrigin); } catch (_) { /* blocked */ } };
        document.body.appendChild(f);
      }
      setTimeout(() => resolve(seen), 3000);
    }), [urls, new URL(s.issuer).origin]);
    assert.deepEqual(got, [], 'no message reached evil.example.test');

    // The same request from the registered origin does get its tokens (the control).
    const ok = await checkSession(store, authDomain);
    assert.equal(ok.email, 'alice@example.com', JSON.stringify(ok));

    // auth0-js logout({returnTo}) → /v2/logout, straight back without a confirmation page.
    const nav = navigations(store);
    store.evaluate(([d]) => new auth0.WebAuth({ domain: d, clientID: 'store' }).logout({ returnTo: `${location.origin}/js.html` }), [authDomain]).catch(() => {});
    await store.waitForURL((u) => u.pathname === '/js.html' && u.hash === '');
    assert.ok(nav.some((u) => u.includes('/v2/logout?')), nav.join(' '));
    const gone = await checkSession(store, authDomain);
    assert.equal(gone.error, 'login_required', JSON.stringify(gone));
    await ctx.close();
  });

  test('oidc-client-ts signoutRedirect: RP-initiated logout with id_token_hint, no confirmation', async () => {
    const ctx = await s.profile();
    const forum = await ctx.newPage();
    const settings = {
      authority: s.issuer,
      client_id: 'forum',
      redirect_uri: `${s.site('forum.example.test')}/oidc.html`,
      silent_redirect_uri: `${s.site('forum.example.test')}/silent.html`,
      post_logout_redirect_uri: `${s.site('forum.example.test')}/plain.html`,
      scope: 'openid email',
    };
    await forum.goto(settings.redirect_uri);
    forum.evaluate((st) => new oidc.UserManager(st).signinRedirect(), settings).catch(() => {});
    await forum.waitForURL(/\/login\?req=/);
    await signIn(forum);
    await forum.waitForURL(/oidc\.html\?code=/);
    const email = await forum.evaluate(async (st) => (await new oidc.UserManager(st).signinRedirectCallback()).profile.email, settings);
    assert.equal(email, 'alice@example.com');
    const nav = navigations(forum);
    forum.evaluate((st) => new oidc.UserManager(st).signoutRedirect({ state: 'bye & <now>' }), settings).catch(() => {});
    await forum.waitForURL((u) => u.pathname === '/plain.html');
    assert.ok(nav.some((u) => u.includes('/logout?') && u.includes('id_token_hint=')), nav.join(' '));
    assert.ok(!nav.some((u) => u.includes('/logout') && !u.includes('id_token_hint')), 'no confirmation page');
    // Back on the forum: the session is gone, so a silent renewal needs the login box.
    await forum.goto(settings.redirect_uri);
    const silent = await forum.evaluate(async (st) => {
      try { await new oidc.UserManager(st).signinSilent(); return 'signed in'; } catch (e) { return e.error || e.message; }
    }, settings);
    assert.equal(silent, 'login_required');
    await ctx.close();
  });
});

describe('cross-site deployment (login.other.test, SameSite=None)', () => {
  let s;
  before(async () => {
    s = await startStack({ authHost: 'login.other.test', session: { cookie_same_site: 'None' }, clients: [gamesClient()] });
  });
  after(async () => s && s.stop());

  test('third-party cookies allowed: silent authentication through the iframe works', async () => {
    const ctx = await s.profile({ thirdPartyCookies: true });
    const page = await ctx.newPage();
    const opts = spaOptions(s, 'login.other.test');
    await spaLogin(page, opts);
    const r = await spaSilent(page, opts);
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.claims.email, 'alice@example.com');
    await ctx.close();
  });

  test('third-party cookies blocked: login_required at once, and refresh tokens still work', async () => {
    const ctx = await s.profile({ thirdPartyCookies: false });
    const page = await ctx.newPage();
    const opts = spaOptions(s, 'login.other.test');
    await spaLogin(page, opts);
    const r = await spaSilent(page, opts);
    assert.equal(r.error, 'login_required', JSON.stringify(r));
    assert.ok(r.ms < 3000, `answered in ${r.ms} ms, not left to time out`);

    // The documented fallback: rotating refresh tokens (useRefreshTokens), no third-party cookie needed.
    const withRefresh = spaOptions(s, 'login.other.test', { useRefreshTokens: true });
    await spaLogin(page, withRefresh);
    const renewed = await spaSilent(page, withRefresh, true);
    assert.equal(renewed.ok, true, JSON.stringify(renewed));
    const again = await spaSilent(page, withRefresh, true);
    assert.equal(again.ok, true, `rotated refresh token works again: ${JSON.stringify(again)}`);
    await ctx.close();
  });
});
