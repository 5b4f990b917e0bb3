// converse.mjs: Converse.js in headless Chromium (Debian's), driven by
// playwright-core. Opens --page (converse.html, served by internal/webtest),
// which logs in over --ws with Converse's auto_login, reports what happens
// and takes commands as lib.mjs describes. A message is sent as a user
// sends one: typed into the chat's text area, Enter pressed, and seen in
// the chat.
//
//   node converse.mjs --page http://127.0.0.1:PORT/ --ws ws://127.0.0.1:PORT/xmpp-websocket
//       --jid alice@localhost --password PW [--settings JSON] [--chromium PATH]
//       [--screenshots DIR] [--max-seconds N]
//
// --settings are Converse settings merged over the page's (for example
// {"auto_reconnect": false}). On a disconnect the script reports Converse's
// own reason and the text the page shows, and with --screenshots saves a
// picture of the page.

import { parseArgs } from 'node:util';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { fail, report, serve, sleep } from './lib.mjs';

const { values: opt } = parseArgs({
    options: {
        page: { type: 'string' },
        ws: { type: 'string' },
        jid: { type: 'string' },
        password: { type: 'string' },
        settings: { type: 'string', default: '{}' },
        chromium: { type: 'string', default: '/usr/bin/chromium' },
        screenshots: { type: 'string', default: '' },
        'max-seconds': { type: 'string', default: '300' },
    },
});

// The text a user sees: the connection feedback above the login form (where
// Converse puts its disconnection and error messages), else the control
// box's status area, else the whole page; only what is rendered visible.
function shownText() {
    const visible = (el) => el && el.getClientRects().length > 0 && getComputedStyle(el).visibility !== 'hidden';
    const text = (el) => (el?.innerText ?? '').replace(/\s+/g, ' ').trim();
    const fb = document.querySelector('.conn-feedback');
    const controlbox = document.querySelector('#controlbox');
    return {
        feedback: visible(fb) ? text(fb) : '',
        login_form: visible(document.querySelector('converse-login-form form, #converse-login')),
        controlbox: visible(controlbox) ? text(controlbox).slice(0, 500) : '',
    };
}

let browser = null;
let shot = 0;

async function screenshot(page, name) {
    if (!opt.screenshots) return '';
    const path = join(opt.screenshots, `converse-${String(++shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path, fullPage: true }).catch(() => {});
    return path;
}

try {
    if (!opt.page || !opt.ws || !opt.jid || !opt.password) throw new Error('need --page, --ws, --jid and --password');
    const settings = {
        websocket_url: opt.ws,
        jid: opt.jid,
        password: opt.password,
        ...JSON.parse(opt.settings),
    };
    browser = await chromium.launch({
        executablePath: opt.chromium,
        headless: true,
        chromiumSandbox: false, // --no-sandbox: root in a container
        timeout: 30000,
        args: [
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
        ], // and a new empty profile, which Playwright makes
    });
    report({ event: 'browser', version: browser.version() });
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const page = await context.newPage();

    // A session is lost at the first state after login that is not
    // connected: Converse then reconnects (auto_reconnect, its default) or
    // gives up. The states of the next moment are collected, then what the
    // page shows is read, and all of it reported as one "disconnected".
    const LOST = ['DISCONNECTING', 'DISCONNECTED', 'CONNFAIL', 'RECONNECTING', 'ERROR', 'AUTHFAIL'];
    let session = false;
    let loss = null;
    const onStatus = async (ev) => {
        if (!session || !LOST.includes(ev.status)) return;
        if (loss) {
            loss.statuses.push(ev.status);
            if (!loss.reason && ev.message) loss.reason = ev.message;
            return;
        }
        loss = { status: ev.status, reason: ev.message, statuses: [ev.status] };
        await sleep(700);
        const shown = await page.evaluate(shownText).catch((err) => ({ feedback: '', error: String(err) }));
        const picture = await screenshot(page, 'disconnected');
        report({
            event: 'disconnected',
            status: loss.status,
            reason: loss.reason,
            statuses: loss.statuses,
            shown: shown.feedback,
            login_form: shown.login_form ?? false,
            controlbox: shown.controlbox ?? '',
            screenshot: picture,
        });
        session = false;
        loss = null;
    };
    const onMessage = async (ev) => {
        const jid = ev.from.split('/')[0];
        const visible = await page
            .locator(`converse-chat[jid="${jid}"] .chat-msg__text`, { hasText: ev.body })
            .first()
            .waitFor({ state: 'visible', timeout: 10000 })
            .then(() => true, () => false);
        report({ event: 'message', from: ev.from, body: ev.body, type: ev.type, visible });
    };
    await page.exposeFunction('guardReport', (ev) => {
        if (ev?.event === 'converse_message') {
            // Received; reported once the user can see it in the chat.
            onMessage(ev);
            return;
        }
        report(ev);
        if (ev?.event === 'logged_in') {
            session = true;
            screenshot(page, 'logged-in');
        }
        if (ev?.event === 'status') onStatus(ev);
        if (ev?.event === 'converse_disconnected') onStatus({ status: 'DISCONNECTED', message: ev.message });
    });
    page.on('console', (msg) => {
        const level = msg.type();
        if (level === 'error' || level === 'warning' || process.env.WEBTEST_VERBOSE) report({ event: 'log', level, text: msg.text().slice(0, 2000) });
    });
    page.on('requestfailed', (req) =>
        report({ event: 'log', level: 'error', text: `request failed: ${req.url()}: ${req.failure()?.errorText ?? ''}` }),
    );
    page.on('response', (resp) => {
        if (resp.status() >= 400) report({ event: 'log', level: 'error', text: `HTTP ${resp.status()}: ${resp.url()}` });
    });
    page.on('pageerror', (err) => report({ event: 'error', message: `page: ${err.message}` }));
    page.on('crash', () => report({ event: 'error', message: 'page crashed', fatal: true }));

    await page.goto(opt.page, { waitUntil: 'load', timeout: 30000 });
    await page.waitForFunction(() => typeof window.converse === 'object', null, { timeout: 30000 });
    report({ event: 'ready' });
    await page.evaluate((s) => window.guardStart(s), settings);

    serve(
        {
            async send(to, body) {
                // Open the chat as a click on a contact would, then type.
                await page.evaluate((jid) => window.guardAPI.chats.open(jid, {}, true), to);
                const chat = page.locator(`converse-chat[jid="${to}"]`);
                const textarea = chat.locator('textarea.chat-textarea');
                await textarea.waitFor({ state: 'visible', timeout: 10000 });
                await textarea.fill(body);
                await textarea.press('Enter');
                await chat
                    .locator('.chat-msg__text', { hasText: body })
                    .first()
                    .waitFor({ state: 'visible', timeout: 10000 });
            },
            async quit() {
                await browser?.close();
                browser = null;
            },
        },
        Number(opt['max-seconds']),
    );
} catch (err) {
    await browser?.close().catch(() => {});
    fail(err);
}
