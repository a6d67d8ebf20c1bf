#!/usr/bin/env python3
"""Drive a workerman-chat session between two headless Chromium pages and have Chromium's own
DevTools front end save each page's network log as HAR.

Each page gets a real DevTools front end: the one Chromium serves at
http://127.0.0.1:9222/devtools/inspector.html, opened in a second tab and attached to the
page, exactly as when DevTools is opened on it. Its network log (with "Preserve log" on, so
leaving the page keeps the entries) is exported by calling the front end's own HAR writer
(`models/har/har.js`, `Writer.harStringForRequests`, what "Save all as HAR" calls): the
files are what a user of that Chromium would save, byte for byte.

The session is the reference one (samples/README.md): A logs in as `mynick`, B as `second`;
A says `hi, all !` to everyone, B says `привет, mynick 👋` to everyone, A says
`psst second, this one is private` to B; B leaves the page, then A.

usage: devtools_har.py CHAT_URL OUT_A.har OUT_B.har   (Chromium on 127.0.0.1:9222)
"""
import json
import sys
import time
import urllib.parse
import urllib.request

import websocket  # websocket-client

DEVTOOLS = "http://127.0.0.1:9222"


def http_json(path, method="GET"):
    req = urllib.request.Request(DEVTOOLS + path, method=method)
    return json.load(urllib.request.urlopen(req))


class Cdp:
    """One DevTools-protocol session with a target; events are kept for `wait_event`."""

    def __init__(self, url):
        self.ws = websocket.create_connection(url, suppress_origin=True, timeout=30)
        self.n = 0
        self.events = []

    def call(self, method, **params):
        self.n += 1
        self.ws.send(json.dumps({"id": self.n, "method": method, "params": params}))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self.n:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.on_event(m)

    def on_event(self, m):
        if m.get("method") == "Page.javascriptDialogOpening":
            # workerman-chat asks for a nickname with prompt().
            self.ws.send(json.dumps({"id": 0, "method": "Page.handleJavaScriptDialog",
                                     "params": {"accept": True, "promptText": self.nick}}))
        self.events.append(m)

    def eval(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, awaitPromise=True,
                      returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expr[:60]}...: {r['exceptionDetails']}")
        return r["result"].get("value")

    def poll(self, expr, what, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if self.eval(expr):
                    return
            except RuntimeError:
                pass
            self.pump(0.1)
        raise SystemExit(f"timed out waiting for {what}")

    def pump(self, secs):
        """Handle events (the nickname prompt) for `secs` seconds."""
        self.ws.settimeout(secs)
        try:
            while True:
                self.on_event(json.loads(self.ws.recv()))
        except websocket.WebSocketTimeoutException:
            pass
        finally:
            self.ws.settimeout(30)


def new_target(url):
    return http_json("/json/new?" + urllib.parse.quote(url, safe=":/?=&"), method="PUT")


# The front end's modules, imported by URL from inside it: the same instances DevTools runs.
FRONTEND_READY = """(async () => {
  const Logs = await import('./models/logs/logs.js');
  const SDK = await import('./core/sdk/sdk.js');
  const Common = await import('./core/common/common.js');
  if (!SDK.TargetManager.TargetManager.instance().primaryPageTarget()) return false;
  Common.Settings.Settings.instance().resolve(SDK.SDKSettings.preserveNetworkLogSettingDescriptor).set(true);
  return !!Logs.NetworkLog.NetworkLog.instance();
})()"""

SAVE_HAR = """(async () => {
  const Logs = await import('./models/logs/logs.js');
  const HAR = await import('./models/har/har.js');
  const Common = await import('./core/common/common.js');
  const requests = Logs.NetworkLog.NetworkLog.instance().requests().slice();
  const progress = new Common.Progress.CompositeProgress(new Common.Progress.Progress());
  return await HAR.Writer.Writer.harStringForRequests(requests, {sanitize: false}, progress);
})()"""


def open_client(nick, chat_url):
    page = new_target("about:blank")
    front = new_target(f"{DEVTOOLS}/devtools/inspector.html?ws=127.0.0.1:9222/devtools/page/{page['id']}")
    fe = Cdp(front["webSocketDebuggerUrl"])
    fe.nick = nick
    fe.poll(FRONTEND_READY, f"the DevTools front end of {nick}'s page")
    pg = Cdp(page["webSocketDebuggerUrl"])
    pg.nick = nick
    pg.call("Page.enable")
    pg.call("Page.navigate", url=chat_url)
    pg.poll("typeof client_id !== 'undefined' && !!client_id", f"{nick}'s login")
    return page, fe, pg


def say(pg, text, to=None):
    sel = "all" if to is None else to
    pg.eval(f"""(() => {{
      select_client_id = {json.dumps(sel)};
      $('#client_list').val(select_client_id);
      document.getElementById('textarea').value = {json.dumps(text)};
      onSubmit();
    }})()""")


def speeches(pg):
    return pg.eval("document.querySelectorAll('#dialog .speech_item').length")


def main():
    chat_url, out_a, out_b = sys.argv[1:4]
    _, fe_a, a = open_client("mynick", chat_url)
    _, fe_b, b = open_client("second", chat_url)
    a.poll("Object.values(client_list).includes('second')", "A seeing B")
    n_a, n_b = speeches(a), speeches(b)
    say(a, "hi, all !")
    b.poll(f"document.querySelectorAll('#dialog .speech_item').length > {n_b}", "B hearing A")
    n_b = speeches(b)
    say(b, "привет, mynick 👋")
    a.poll(f"document.querySelectorAll('#dialog .speech_item').length > {n_a + 1}", "A hearing B")
    b_id = a.eval("Object.keys(client_list).find(k => client_list[k] === 'second')")
    say(a, "psst second, this one is private", to=b_id)
    b.poll(f"document.querySelectorAll('#dialog .speech_item').length > {n_b + 1}", "B's private")
    # Leaving the page closes its websocket (1001, going away), as closing the tab does,
    # while the front end stays attached to save the log.
    b.call("Page.navigate", url="about:blank")
    a.pump(1.0)
    a.call("Page.navigate", url="about:blank")
    a.pump(1.5)
    for fe, out in ((fe_a, out_a), (fe_b, out_b)):
        har = fe.eval(SAVE_HAR)
        with open(out, "w", encoding="utf-8") as f:
            f.write(har)
        log = json.loads(har)["log"]
        ws = [e for e in log["entries"] if e.get("_resourceType") == "websocket"]
        print(f"{out}: {len(log['entries'])} entries, websocket messages:",
              [len(e.get("_webSocketMessages", [])) for e in ws])


if __name__ == "__main__":
    main()
