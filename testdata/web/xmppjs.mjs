// xmppjs.mjs: @xmpp/client under Node, over XMPP-over-WebSocket (RFC 7395).
// Logs in, reports what happens and takes commands as lib.mjs describes.
//
//   node xmppjs.mjs --ws ws://127.0.0.1:PORT/xmpp-websocket --jid alice@localhost --password PW
//       [--resource R] [--reconnect] [--max-seconds N]
//
// Without --reconnect, @xmpp/client's own reconnection is stopped, so that a
// lost connection stays lost and is reported once.

import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { fail, report, serve } from './lib.mjs';

// Node 20 has no WebSocket global (22 has): @xmpp/websocket uses the global.
globalThis.WebSocket ??= WebSocket;
const { client, xml } = await import('@xmpp/client');

const { values: opt } = parseArgs({
    options: {
        ws: { type: 'string' },
        jid: { type: 'string' },
        password: { type: 'string' },
        resource: { type: 'string', default: 'xmppjs' },
        reconnect: { type: 'boolean', default: false },
        'max-seconds': { type: 'string', default: '300' },
    },
});

try {
    if (!opt.ws || !opt.jid || !opt.password) throw new Error('need --ws, --jid and --password');
    const at = opt.jid.indexOf('@');
    if (at <= 0) throw new Error(`--jid ${opt.jid}: want user@domain`);
    const xmpp = client({
        service: opt.ws,
        domain: opt.jid.slice(at + 1),
        username: opt.jid.slice(0, at),
        password: opt.password,
        resource: opt.resource,
    });
    if (!opt.reconnect) xmpp.reconnect.stop();

    let lastError = null;
    let online = false;
    xmpp.on('status', (status) => report({ event: 'status', status }));
    xmpp.on('error', (err) => {
        // A stream error carries its condition and text (what an app would
        // show); a socket error its message.
        lastError = err;
        report({
            event: 'error',
            message: String(err?.message ?? err),
            condition: err?.condition ?? '',
            text: err?.text ?? '',
        });
    });
    // Logged in once available: when the server reflects our initial
    // presence back to us (RFC 6121 4.2.2), it has marked this resource
    // available and messages to the bare JID reach us. Until then a
    // message to us may bounce with service-unavailable.
    let me = '';
    xmpp.on('online', async (jid) => {
        me = jid.toString();
        await xmpp.send(xml('presence'));
    });
    xmpp.on('stanza', (stanza) => {
        if (!online && me && stanza.is('presence') && !stanza.attrs.type && stanza.attrs.from === me) {
            online = true;
            report({ event: 'logged_in', jid: me });
        }
        if (!stanza.is('message')) return;
        if (stanza.attrs.type === 'error') {
            const err = stanza.getChild('error');
            const cond = err?.children?.find((c) => typeof c === 'object' && c.name !== 'text')?.name ?? '';
            report({ event: 'message_error', from: stanza.attrs.from ?? '', condition: cond });
            return;
        }
        const body = stanza.getChildText('body');
        if (body === null) return;
        report({ event: 'message', from: stanza.attrs.from ?? '', body, type: stanza.attrs.type ?? '' });
    });
    xmpp.on('disconnect', ({ clean, reason }) => {
        // reason is the WebSocket close event: its code and reason are
        // what the server (or the network) said.
        const err = lastError;
        const shown = err ? (err.condition ? `${err.condition}${err.text ? ': ' + err.text : ''}` : String(err.message)) : '';
        report({
            event: 'disconnected',
            was_online: online,
            clean: Boolean(clean),
            code: reason?.code ?? 0,
            // The close frame's reason, else what the close was.
            reason: reason?.reason
                ? String(reason.reason)
                : `WebSocket closed, code ${reason?.code ?? 0}${clean ? '' : ', not cleanly'}`,
            condition: err?.condition ?? '',
            shown,
        });
        online = false;
        lastError = null;
    });

    serve(
        {
            async send(to, body) {
                if (!online) throw new Error('not online');
                await xmpp.send(xml('message', { to, type: 'chat' }, xml('body', {}, body)));
            },
            async quit() {
                xmpp.reconnect.stop();
                if (xmpp.status !== 'offline' && xmpp.status !== 'disconnect') await xmpp.stop();
            },
        },
        Number(opt['max-seconds']),
    );
    report({ event: 'ready' });
    await xmpp.start();
} catch (err) {
    fail(err);
}
