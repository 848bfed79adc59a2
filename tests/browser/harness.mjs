// The stack the browser tests run against: a real `sesame serve` (SQLite, or
// Postgres when BROWSER_TEST_BACKEND=postgres), clients and a user made with
// the `sesame` CLI as an operator would, and one HTTPS front on a random port
// that terminates TLS for every hostname: auth.* is proxied to Sesame (as a
// load balancer would), every other host serves the SPA pages and the
// libraries' browser bundles from node_modules. Chromium maps the hostnames to
// 127.0.0.1 with --host-resolver-rules.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
export const BIN = process.env.BROWSER_TEST_SESAME_BIN || path.join(root, 'target/debug/sesame');
export const PASSWORD = 'correct horse battery staple';
export const EMAIL = 'alice@example.com';

const LIBS = {
  '/lib/auth0.min.js': 'node_modules/auth0-js/dist/auth0.min.js',
  '/lib/auth0-spa-js.production.js': 'node_modules/@auth0/auth0-spa-js/dist/auth0-spa-js.production.js',
  '/lib/oidc-client-ts.min.js': 'node_modules/oidc-client-ts/dist/browser/oidc-client-ts.min.js',
};

export async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function certificate(dir) {
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=example.test',
    '-addext', 'subjectAltName=DNS:*.example.test,DNS:*.other.test',
  ], { stdio: 'ignore' });
  return { key: fs.readFileSync(key), cert: fs.readFileSync(cert) };
}

/** A Postgres database of its own, dropped by `stop()`. */
function postgresDatabase() {
  const admin = process.env.TEST_POSTGRES_URL || 'postgres://postgres@127.0.0.1:5432/test';
  const name = `sesame_browser_${process.pid}_${Date.now()}`;
  const psql = (sql) => execFileSync('psql', [admin, '-v', 'ON_ERROR_STOP=1', '-qc', sql], { stdio: 'pipe' });
  psql(`CREATE DATABASE ${name}`);
  const url = new URL(admin);
  url.pathname = `/${name}`;
  url.searchParams.set('sslmode', 'disable');
  return { url: url.toString(), drop: () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/**
 * Starts Sesame for `authHost` (e.g. auth.example.test) behind the HTTPS
 * front. `clients` are `sesame client add` argument lists in which
 * `{site:NAME}` becomes `https://NAME:PORT`.
 */
export async function startStack(options) {
  const cleanup = [];
  try {
    return await start(options, cleanup);
  } catch (e) {
    for (const f of cleanup.reverse()) await Promise.resolve().then(f).catch(() => {});
    throw e;
  }
}

/**
 * Starts one `sesame serve` (migrated, with clients and users made by its
 * CLI) on a free port and waits until it is ready.
 */
export async function launch({ dir, name, issuer, site, clients, users, session, config, secrets = {}, port = null }, cleanup) {
  const sesamePort = port || (await freePort());
  const pg = process.env.BROWSER_TEST_BACKEND === 'postgres' ? postgresDatabase() : null;
  if (pg) cleanup.push(pg.drop);
  // Sesame refuses SESAME_* variables it does not know; pass only ours.
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SESAME_')));
  const env = {
    ...inherited,
    ...secrets,
    SESAME_ISSUER: issuer,
    SESAME_LISTEN: `127.0.0.1:${sesamePort}`,
    SESAME_DATABASE_URL: pg ? pg.url : `sqlite://${path.join(dir, `${name}.db`)}`,
    SESAME_MASTER_KEY: execFileSync(BIN, ['keys', 'new-master-key'], { env: inherited }).toString().trim(),
    SESAME_LOG_FORMAT: 'json',
    SESAME_LOGIN__PRODUCT_NAME: 'Example Login',
  };
  if (config) {
    const file = path.join(dir, `${name}.toml`);
    fs.writeFileSync(file, config);
    env.SESAME_CONFIG = file;
  }
  for (const [k, v] of Object.entries(session)) env[`SESAME_SESSION__${k.toUpperCase()}`] = String(v);
  const cli = (args, input) => execFileSync(BIN, args, { env, input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();
  cli(['migrate']);
  for (const c of clients) {
    const input = c.secret ? `${c.secret}\n` : undefined;
    const args = c.args || c;
    cli(['client', 'add', ...args.map((a) => a.replace(/\{site:([^}]+)\}/g, (_, h) => site(h)))], input);
  }
  for (const u of users) {
    cli(['user', 'add', '--email', u.email, '--name', u.name, '--email-verified', '--password-stdin'], `${PASSWORD}\n`);
  }
  const logFile = path.join(dir, `${name}.log`);
  const log = fs.openSync(logFile, 'a');
  const server = spawn(BIN, ['serve'], { env, stdio: ['ignore', log, log] });
  cleanup.push(() => server.kill('SIGKILL'));
  const started = Date.now();
  for (;;) {
    if (server.exitCode !== null) throw new Error(`sesame exited: ${fs.readFileSync(logFile)}`);
    const ok = await fetch(`http://127.0.0.1:${sesamePort}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() - started > 20000) throw new Error('sesame did not become ready');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port: sesamePort, cli, server, pg, log: () => fs.readFileSync(logFile, 'utf8') };
}

async function start({ authHost, clients, session = {}, upstream = null, config = null, secrets = {}, api = null }, cleanup) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sesame-browser-'));
  const tls = certificate(dir);
  cleanup.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const front = https.createServer(tls);
  await new Promise((r) => front.listen(0, '127.0.0.1', r));
  cleanup.push(() => new Promise((r) => front.close(r)));
  const port = front.address().port;
  const site = (host) => `https://${host}:${port}`;
  // Auth0's issuer form, with the trailing slash, which auth0-js and auth0-spa-js require.
  const issuer = `${site(authHost)}/`;
  const servers = [];
  // The upstream identity provider: a second Sesame on its own host.
  let up = null;
  if (upstream) {
    up = await launch({
      dir, name: 'upstream', issuer: `${site(upstream.host)}/`, site, clients: upstream.clients,
      users: upstream.users, session: {}, config: null,
    }, cleanup);
    servers.push(up);
  }
  const main = await launch({
    dir, name: 'sesame', issuer, site, clients, users: [{ email: EMAIL, name: 'Alice Example' }], session,
    config: typeof config === 'function' ? config({ site, upstreamPort: up && up.port }) : config,
    secrets,
  }, cleanup);
  servers.push(main);
  const { cli } = main;
  const sesamePort = main.port;
  const pageRequests = [];
  front.on('request', (req, res) => {
    const host = (req.headers.host || '').split(':')[0];
    if (host === authHost) return proxy(req, res, sesamePort);
    if (upstream && host === upstream.host) return proxy(req, res, up.port);
    // An API of the test's own (api.example.test), behind the same TLS front.
    if (api && host === 'api.example.test') return api(req, res);
    pageRequests.push(new URL(req.url, `https://${req.headers.host}`));
    return servePage(req, res);
  });

  const browserArgs = () => [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--ignore-certificate-errors',
    '--host-resolver-rules=MAP *.example.test 127.0.0.1, MAP *.other.test 127.0.0.1',
  ];
  const browsers = [];
  return {
    issuer,
    port,
    /** Sesame's own plain-HTTP port (what a load balancer talks to). */
    sesamePort,
    /** Every URL the SPA hosts were asked for (front-channel logout lands here). */
    pageRequests,
    site,
    dir,
    cli,
    /**
     * A fresh browser profile. `thirdPartyCookies` sets Chromium's own cookie
     * control (the setting users and Chrome's incognito mode use): false blocks
     * cookies in cross-site iframes, true allows them.
     */
    async profile({ thirdPartyCookies = false } = {}) {
      const udd = fs.mkdtempSync(path.join(dir, 'profile-'));
      fs.mkdirSync(path.join(udd, 'Default'));
      const prefs = { profile: { cookie_controls_mode: thirdPartyCookies ? 0 : 1, block_third_party_cookies: !thirdPartyCookies } };
      fs.writeFileSync(path.join(udd, 'Default', 'Preferences'), JSON.stringify(prefs));
      const ctx = await chromium.launchPersistentContext(udd, {
        executablePath: '/usr/bin/chromium',
        headless: true,
        args: browserArgs(),
      });
      browsers.push(ctx);
      return ctx;
    },
    async stop() {
      for (const b of browsers) await b.close().catch(() => {});
      for (const x of servers) {
        x.server.kill('SIGTERM');
        await new Promise((r) => (x.server.exitCode !== null ? r() : x.server.once('exit', r)));
        if (x.pg) x.pg.drop();
      }
      await new Promise((r) => front.close(r));
      front.closeAllConnections?.();
      fs.rmSync(dir, { recursive: true, force: true });
    },
    log: () => main.log(),
    upstreamLog: () => (up ? up.log() : ''),
  };
}

/** TLS terminates here; Sesame sees the request as a load balancer would pass it. */
function proxy(req, res, sesamePort) {
  const headers = { ...req.headers, 'x-forwarded-proto': 'https', 'x-forwarded-for': '127.0.0.1' };
  const up = http.request({ host: '127.0.0.1', port: sesamePort, method: req.method, path: req.url, headers }, (r) => {
    res.writeHead(r.statusCode, r.rawHeaders.length ? rawToObject(r.rawHeaders) : r.headers);
    r.pipe(res);
  });
  up.on('error', () => {
    res.writeHead(502);
    res.end('bad gateway');
  });
  req.pipe(up);
}

// Keeps repeated headers (Set-Cookie, Vary) as arrays.
function rawToObject(raw) {
  const out = {};
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i].toLowerCase();
    if (out[k] === undefined) out[k] = raw[i + 1];
    else out[k] = [].concat(out[k], raw[i + 1]);
  }
  return out;
}

function servePage(req, res) {
  const url = new URL(req.url, 'https://x');
  let file;
  if (LIBS[url.pathname]) file = path.join(here, LIBS[url.pathname]);
  else if (/^\/[a-z0-9-]+\.html$/.test(url.pathname)) file = path.join(here, 'pages', url.pathname.slice(1));
  if (!file || !fs.existsSync(file)) {
    res.writeHead(404, { 'content-type': 'text/plain' });
    return res.end('not found');
  }
  const type = file.endsWith('.js') ? 'text/javascript' : 'text/html; charset=utf-8';
  res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
  fs.createReadStream(file).pipe(res);
}

/** Signs in on Sesame's login box in `page`, which must be showing it. */
export async function signIn(page) {
  await page.waitForSelector('input[name=email]');
  await page.fill('input[name=email]', EMAIL);
  await page.fill('input[name=password]', PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
}
