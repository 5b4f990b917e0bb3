#!/usr/bin/python3
"""A third-party XMPP client for Guard's integration tests: slixmpp 1.8.

It connects to --host:--port, logs in as --jid, sends --body to itself, waits
for the echo, and prints one JSON line to stdout:

  {"connected": bool, "logged_in": bool, "echo": bool,
   "stream_error": "condition or empty", "stream_error_text": "...",
   "disconnect_reason": "...", "held": bool, "elapsed": seconds,
   "tls": "TLSv1.3 or empty", "alpn": "xmpp-client or empty",
   "mechanism": "SCRAM-SHA-1 or empty", "features": ["mechanisms", ...]}

--tls selects the transport:
  none      plaintext, STARTTLS disabled (the default);
  starttls  STARTTLS is required: the client fails unless the server offers
            <starttls/> before SASL (slixmpp 1.8 does not enforce its own
            force_starttls, so this script does);
  direct    TLS from the first byte (XEP-0368), ALPN "xmpp-client".
--ca FILE is the PEM root to trust (default: the system's roots); the
server's certificate must match the JID's domain. --source ADDR binds the
client's socket to that local address (e.g. 127.0.0.7) before it connects,
so that the server, or a proxy, sees the connection come from it.

With --tls starttls or direct, SASL is limited to SCRAM-SHA-1 and
SCRAM-SHA-256: no PLAIN, and no -PLUS (channel binding cannot work through a
TLS-terminating proxy). "tls" is the negotiated protocol version when the
session was set up (or when it failed), "mechanism" the SASL mechanism that
succeeded, and "features" the local names of the last stream features seen
before authentication (after TLS, when TLS was used).

With --hold SECONDS it stays connected after the echo for that long, and
records a <stream:error> the server sends meanwhile (a test kills or stops
the server mid-session and expects "stream_error" to be set).

Exit status: 0 when connected, logged in and echoed (in --hold mode a stream
error during the hold is reported, not a failure), 1 otherwise. Everything is
bounded by --timeout (plus --hold). Run it with Debian's /usr/bin/python3
(package python3-slixmpp).
"""

import argparse
import asyncio
import json
import logging
import pathlib
import sys
import time

import slixmpp


class EchoClient(slixmpp.ClientXMPP):
    def __init__(self, args):
        super().__init__(args.jid, args.password)
        self.args = args
        self.result = {
            "connected": False,
            "logged_in": False,
            "echo": False,
            "stream_error": "",
            "stream_error_text": "",
            "disconnect_reason": "",
            "held": False,
            "tls": "",
            "alpn": "",
            "mechanism": "",
        }
        self.done = self.loop.create_future()
        self.hold_timer = None

        if args.tls == "none":
            # Plaintext: Guard's tests run over loopback. Allow PLAIN
            # without TLS too (SCRAM is preferred by slixmpp anyway and
            # allowed unencrypted by default).
            self["feature_mechanisms"].unencrypted_plain = True
        else:
            # SCRAM only: never PLAIN, never -PLUS (channel binding breaks
            # through a TLS-terminating proxy, by design).
            self["feature_mechanisms"].use_mechs = {"SCRAM-SHA-1", "SCRAM-SHA-256"}
            if args.ca:
                self.ca_certs = pathlib.Path(args.ca)
            if args.tls == "direct":
                # XEP-0368: ALPN xmpp-client on direct TLS. (The context is
                # only used for this connection's handshake.)
                self.ssl_context.set_alpn_protocols(["xmpp-client"])
        self.use_ipv6 = False
        self.auto_reconnect = False
        if args.source:
            self.bind_source(args.source)

        self.add_event_handler("connected", self.on_connected)
        self.add_event_handler("connection_failed", self.on_connection_failed)
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("stream_error", self.on_stream_error)
        self.add_event_handler("failed_all_auth", self.on_failed_auth)
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("ssl_invalid_chain", self.on_invalid_chain)
        self.add_event_handler("disconnected", self.on_disconnected)

    # Connect exactly to host:port: no SRV or AAAA look-ups for the JID's
    # domain (the machine has no DNS, and "localhost" could become ::1).
    async def get_dns_records(self, domain, port=None):
        return [(self.args.host, self.args.host, self.args.port)]

    def bind_source(self, source):
        """Connect from the local address source: slixmpp 1.8 has no option
        for it, so its loop's create_connection (used for this client's one
        connection) gets local_addr. The STARTTLS upgrade passes the
        connected socket instead and is left alone."""
        create = self.loop.create_connection

        async def create_connection(*a, **kw):
            if kw.get("sock") is None:
                kw.setdefault("local_addr", (source, 0))
            return await create(*a, **kw)

        self.loop.create_connection = create_connection

    def finish(self, reason=None):
        if reason and not self.result["disconnect_reason"]:
            self.result["disconnect_reason"] = reason
        if not self.done.done():
            self.done.set_result(True)

    def on_connected(self, _event):
        self.result["connected"] = True

    def on_connection_failed(self, err):
        # slixmpp would retry with back-off; a test wants the failure now.
        self.finish("connection failed: %s" % (err,))

    def on_failed_auth(self, _event):
        self.result["disconnect_reason"] = "authentication failed"

    def on_auth_success(self, _event):
        mech = self["feature_mechanisms"].mech
        self.result["mechanism"] = mech.name if mech is not None else ""
        self.note_tls()

    def on_invalid_chain(self, err):
        # Registering the handler keeps slixmpp from disconnecting silently.
        self.finish("TLS handshake failed: %s" % (err,))
        self.abort()

    def note_tls(self):
        """Record the negotiated TLS version and ALPN protocol, if any."""
        if self.transport is None:
            return
        obj = self.transport.get_extra_info("ssl_object")
        if obj is not None:
            self.result["tls"] = obj.version() or ""
            self.result["alpn"] = obj.selected_alpn_protocol() or ""

    async def _handle_stream_features(self, features):
        # Wraps ClientXMPP's handler (registered as a bound method, so this
        # override is the one called): record what the server offered
        # before authentication, and insist on TLS where it is required.
        if not self.authenticated:
            self.note_tls()
            names = [child.tag.rpartition("}")[2] for child in features.xml]
            self.result["features"] = names
            if self.args.tls != "none" and not self.result["tls"] and "starttls" not in names:
                self.finish("TLS required but the server offered no STARTTLS: features %s" % (names,))
                self.abort()
                return True
        return await super()._handle_stream_features(features)

    async def on_session_start(self, _event):
        self.result["logged_in"] = True
        self.note_tls()
        # Available presence first, so that the server routes a message to
        # our bare JID to this resource.
        self.send_presence()
        self.send_message(mto=self.boundjid.bare, mbody=self.args.body, mtype="chat")

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"] == self.args.body \
                and msg["from"].bare == self.boundjid.bare and not self.result["echo"]:
            self.result["echo"] = True
            if self.args.hold > 0:
                self.hold_timer = self.loop.call_later(self.args.hold, self.end_hold)
            else:
                self.disconnect(wait=2.0, reason="done")

    def end_hold(self):
        self.result["held"] = True
        self.disconnect(wait=2.0, reason="done")

    def on_stream_error(self, err):
        self.result["stream_error"] = err["condition"] or "undefined-condition"
        self.result["stream_error_text"] = err["text"] or ""

    def on_disconnected(self, reason):
        if self.hold_timer is not None:
            self.hold_timer.cancel()
        self.finish(str(reason) if reason else "disconnected")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5222)
    p.add_argument("--jid", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--body", default="hello from slixmpp")
    p.add_argument("--timeout", type=float, default=15.0,
                   help="seconds for connect, login and echo")
    p.add_argument("--hold", type=float, default=0.0,
                   help="seconds to stay connected after the echo")
    p.add_argument("--tls", choices=("none", "starttls", "direct"), default="none",
                   help="none: plaintext; starttls: required STARTTLS; direct: TLS from the first byte")
    p.add_argument("--ca", default="", help="PEM file of the root(s) to trust for TLS")
    p.add_argument("--source", default="", help="local address to connect from (e.g. 127.0.0.7)")
    p.add_argument("--debug", action="store_true", help="slixmpp debug log to stderr")
    args = p.parse_args()

    logging.basicConfig(level=logging.DEBUG if args.debug else logging.ERROR,
                        format="%(levelname)-8s %(name)s: %(message)s", stream=sys.stderr)
    if not args.debug:
        # slixmpp leaves a filter task pending at exit; not worth a warning.
        logging.getLogger("asyncio").setLevel(logging.CRITICAL)

    start = time.monotonic()
    xmpp = EchoClient(args)
    xmpp.connect(address=(args.host, args.port), use_ssl=args.tls == "direct",
                 force_starttls=args.tls == "starttls", disable_starttls=args.tls != "starttls")
    try:
        xmpp.loop.run_until_complete(
            asyncio.wait_for(asyncio.shield(xmpp.done), args.timeout + max(args.hold, 0)))
    except asyncio.TimeoutError:
        xmpp.finish("timeout after %.1fs" % (time.monotonic() - start))
    except KeyboardInterrupt:
        xmpp.finish("interrupted")

    # Leave nothing open: give a graceful disconnect a moment, then abort.
    if xmpp.transport is not None:
        try:
            fut = xmpp.disconnect(wait=1.0, reason=xmpp.result["disconnect_reason"] or "exit")
            xmpp.loop.run_until_complete(asyncio.wait_for(fut, 3.0))
        except Exception:  # noqa: BLE001 - best effort on the way out
            pass
        if xmpp.transport is not None:
            xmpp.abort()

    r = xmpp.result
    r["elapsed"] = round(time.monotonic() - start, 3)
    print(json.dumps(r), flush=True)
    ok = r["connected"] and r["logged_in"] and r["echo"]
    if args.hold <= 0 and r["stream_error"]:
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
