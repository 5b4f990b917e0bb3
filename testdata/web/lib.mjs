// The line protocol both clients speak with internal/webtest.
//
// Out (stdout), one JSON object a line, each with "event" and "t" (ms since
// the script started):
//   ready                      the client is set up and about to connect
//   status     status, message a connection state as the client names it
//   logged_in  jid             available: the server reflected our initial presence
//   message    from, body      a message with a body arrived (from is a full JID)
//   sent       to, body        a "send" command was carried out
//   waited     ms              a "wait" command is over (a barrier)
//   disconnected reason, shown, ...  the session ended; shown is what the
//                              user is shown ("" if nothing)
//   error      message, ...    an error the client reported
//   log        level, text     a warning or error the client logged
//   bye                        the script ends
// In (stdin), one JSON object a line:
//   {"cmd":"send","to":JID,"body":TEXT}
//   {"cmd":"wait","ms":N}
//   {"cmd":"quit"}
// Commands run one after another. The script also ends by itself after
// --max-seconds, and when stdin closes.

import { createInterface } from 'node:readline';

const started = Date.now();

export function report(obj) {
    process.stdout.write(JSON.stringify({ ...obj, t: Date.now() - started }) + '\n');
}

export function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

// serve reads commands from stdin and runs them with handlers.send(to, body)
// and handlers.quit(); it returns once quit ran.
export function serve(handlers, maxSeconds) {
    let quitting = null;
    const quit = (why) => {
        quitting ??= (async () => {
            try {
                await Promise.race([handlers.quit(why), sleep(10000)]);
            } catch (err) {
                report({ event: 'error', message: `quit: ${err?.message ?? err}` });
            }
            report({ event: 'bye', why });
            process.exit(0);
        })();
        return quitting;
    };
    const limit = setTimeout(() => quit('max-seconds'), maxSeconds * 1000);
    limit.unref();
    for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => quit(sig));

    let chain = Promise.resolve();
    const rl = createInterface({ input: process.stdin });
    rl.on('line', (line) => {
        if (!line.trim()) return;
        let cmd;
        try {
            cmd = JSON.parse(line);
        } catch (err) {
            report({ event: 'error', message: `bad command ${JSON.stringify(line)}: ${err.message}` });
            return;
        }
        chain = chain.then(async () => {
            try {
                if (cmd.cmd === 'send') {
                    await handlers.send(String(cmd.to), String(cmd.body));
                    report({ event: 'sent', to: cmd.to, body: cmd.body });
                } else if (cmd.cmd === 'wait') {
                    const ms = Math.min(Math.max(Number(cmd.ms) || 0, 0), 60000);
                    await sleep(ms);
                    report({ event: 'waited', ms });
                } else if (cmd.cmd === 'quit') {
                    await quit('quit');
                } else {
                    report({ event: 'error', message: `unknown command ${JSON.stringify(cmd.cmd)}` });
                }
            } catch (err) {
                report({ event: 'error', message: `${cmd.cmd}: ${err?.message ?? err}` });
            }
        });
    });
    rl.on('close', () => {
        chain = chain.then(() => quit('stdin closed'));
    });
}

export function fail(err) {
    report({ event: 'error', message: String(err?.stack ?? err), fatal: true });
    report({ event: 'bye', why: 'fatal' });
    process.exit(1);
}
