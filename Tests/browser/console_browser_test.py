"""The console in a real browser (Debian's Chromium, driven by selenium) against a live gateway
and sandbox on loopback: sign in; send the fixture events; find the minor's run by its inquiry
id; see its graph and steps; approve its review and see it completed; make a delivery fail
against a receiver answering 500, retry it from the console once the receiver recovers and see
the new attempt; add an item to a list; sign out and find the pages closed. A screenshot of each
page goes to the output folder.

    python console_browser_test.py --binary .build/debug/switchboard --repo . --out docs/console
"""

import argparse
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(http.server.BaseHTTPRequestHandler):
    """A customer's system: answers 500 until `healthy` is set, then 200."""
    healthy = False
    received = 0

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        Receiver.received += 1
        self.send_response(200 if Receiver.healthy else 500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"ok": true}' if Receiver.healthy else b'{"error": "down"}')

    def log_message(self, *args):
        pass


def wait_for(predicate, what, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if predicate():
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError("timed out waiting for " + what)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--repo", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    repo = os.path.abspath(args.repo)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    work = tempfile.mkdtemp(prefix="switchboard-browser-")
    processes = []
    driver = None
    try:
        receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        config = os.path.join(work, "config")
        shutil.copytree(os.path.join(repo, "connectors"), os.path.join(config, "connectors"))
        shutil.copytree(os.path.join(repo, "workflows"), os.path.join(config, "workflows"))
        with open(os.path.join(config, "connectors", "crm.yaml"), "w") as f:
            f.write(f"""id: crm
kind: http
description: A customer's system, for the browser test.
base_url: http://127.0.0.1:{receiver.server_port}
auth: {{ bearer: "crm-browser-secret" }}
signing: off
allow_networks: [ 127.0.0.0/8 ]
retry: {{ max_attempts: 1 }}
operations:
  notify: {{ method: POST, path: /hook, body: "= input" }}
""")
        with open(os.path.join(config, "workflows", "notify-crm.yaml"), "w") as f:
            f.write("""id: notify-crm
trigger: { api: { input: { case: { type: string } } } }
steps:
  - { id: tell, connector: crm, operation: notify }
  - { id: done, action: approve }
""")
        database = "sqlite:" + os.path.join(work, "switchboard.sqlite")
        key = subprocess.run([binary, "keys", "create", "--database", database, "--name", "browser"],
                             check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
        subprocess.run([binary, "lists", "add", "blocked-ips", "203.0.113.7", "198.51.100.0/24", "--kind", "ip",
                        "--database", database], check=True, capture_output=True)
        gateway_port, sandbox_port = free_port(), free_port()
        base = f"http://127.0.0.1:{gateway_port}"
        sandbox = f"http://127.0.0.1:{sandbox_port}/sandbox"
        env = dict(os.environ, SWITCHBOARD_RATE_LIMIT="off", SLACK_WEBHOOK_URL=sandbox + "/slack/webhook",
                   KYB_BASE_URL=sandbox + "/kyb", SLACK_API_BASE_URL=sandbox + "/slack/api")
        log = open(os.path.join(work, "processes.log"), "w")
        processes.append(subprocess.Popen([binary, "sandbox", "--port", str(sandbox_port), "--gateway-url", base,
                                           "--callback-delay", "100ms"], stdout=log, stderr=log, env=env))
        processes.append(subprocess.Popen([binary, "serve", "--config", config, "--database", database, "--port",
                                           str(gateway_port), "--log-level", "warning"], stdout=log, stderr=log, env=env))
        wait_for(lambda: urllib.request.urlopen(base + "/ready").status == 200, "the gateway")

        def api(method, path, body=None):
            request = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None,
                                             headers={"Authorization": "Bearer " + key, "Content-Type": "application/json"})
            with urllib.request.urlopen(request) as response:
                return json.loads(response.read() or b"null")

        options = Options()
        options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
        for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1440,1000"]:
            options.add_argument(flag)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or "/usr/bin/chromedriver"), options=options)
        driver.set_page_load_timeout(20)

        def shot(name):
            driver.save_screenshot(os.path.join(out, name + ".png"))

        def text():
            # A click that posts a form returns before the next page has loaded: wait for its body.
            found = []
            wait_for(lambda: found.append(driver.find_element(By.TAG_NAME, "body").text) or True, "a page", timeout=10)
            return found[-1]

        # Signing in.
        driver.get(base + "/console/runs")
        assert driver.current_url.endswith("/console/login"), driver.current_url
        driver.find_element(By.NAME, "key").send_keys("sk_wrong")
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for(lambda: driver.find_element(By.CSS_SELECTOR, "[role=alert]").is_displayed(), "the sign-in's alert")
        shot("login")
        driver.find_element(By.NAME, "key").send_keys(key)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for(lambda: driver.current_url.endswith("/console/runs"), "the runs page after signing in")

        # The fixture events, then the minor's run found by its inquiry id.
        fixtures = os.path.join(repo, "fixtures", "events")
        for name in sorted(os.listdir(fixtures)):
            with open(os.path.join(fixtures, name)) as f:
                api("POST", "/v1/events", json.load(f))
        driver.get(base + "/console/runs")
        shot("runs")
        with open(os.path.join(fixtures, "inquiry-minor.json")) as f:
            inquiry = json.load(f)["data"]["inquiry"]["id"]
        search = driver.find_element(By.NAME, "q")
        search.clear()
        search.send_keys(f"data.inquiry.id={inquiry}")
        driver.find_element(By.CSS_SELECTOR, ".filters button[type=submit]").click()
        wait_for(lambda: "q=data.inquiry.id" in driver.current_url, "the search's results")
        rows = [row for row in driver.find_elements(By.CSS_SELECTOR, "table.grid tbody tr") if "review-minors" in row.text]
        assert len(rows) == 1, [row.text for row in driver.find_elements(By.CSS_SELECTOR, "table.grid tbody tr")]
        rows[0].find_element(By.TAG_NAME, "a").click()
        wait_for(lambda: "waiting" in text(), "the minor's run to wait for its review")
        driver.refresh()
        assert driver.find_element(By.CSS_SELECTOR, 'svg [data-step="minor"][data-status="completed"]')
        assert driver.find_element(By.CSS_SELECTOR, 'svg [data-step="review"][data-status="waiting"]')
        assert len(driver.find_elements(By.CSS_SELECTOR, "ol.steps li.step")) >= 4
        run_url = driver.current_url
        shot("run-waiting")
        driver.get(base + "/console/reviews")
        assert inquiry in text()
        shot("reviews")

        # Approve, and see the run completed with the decision.
        driver.get(run_url)
        driver.find_element(By.XPATH, "//button[text()='Approve']").click()
        def approved():
            driver.get(run_url)
            return "completed" in driver.find_element(By.TAG_NAME, "h1").text and "approved" in driver.find_element(By.TAG_NAME, "h1").text
        wait_for(approved, "the run to complete with approved")
        assert not driver.find_elements(By.XPATH, "//button[text()='Approve']")
        shot("run-completed")

        # A delivery that fails against a 500, retried from the console once the receiver recovers.
        run = api("POST", "/v1/workflows/notify-crm/runs", {"case": "c-1"})["id"]
        wait_for(lambda: api("GET", f"/v1/runs/{run}")["status"] == "failed", "the notify run to fail")
        driver.get(base + "/console/deliveries?status=dead")
        shot("deliveries")
        driver.find_element(By.CSS_SELECTOR, "table.grid tbody tr a").click()
        assert driver.find_elements(By.CSS_SELECTOR, '[data-attempt="1"]')
        assert "crm-browser-secret" not in text() and "••••" in driver.find_element(By.CSS_SELECTOR, "pre.curl").text
        Receiver.healthy = True
        driver.find_element(By.XPATH, "//button[text()='Retry']").click()
        def second_attempt():
            driver.refresh()
            return bool(driver.find_elements(By.CSS_SELECTOR, '[data-attempt="2"]'))
        wait_for(second_attempt, "the retry's attempt")
        wait_for(lambda: api("GET", f"/v1/runs/{run}")["status"] == "completed", "the notify run to complete")
        shot("delivery")

        # A list: add an item.
        driver.get(base + "/console/lists/blocked-ips")
        driver.find_element(By.NAME, "item").send_keys("192.0.2.200")
        driver.find_element(By.XPATH, "//button[text()='Add']").click()
        wait_for(lambda: "192.0.2.200" in driver.find_element(By.CSS_SELECTOR, "table.grid").text, "the added item")
        assert "192.0.2.200" in api("GET", "/v1/lists/blocked-ips")["items"]
        shot("list")

        for path, name in [("/console/workflows/review-minors", "workflow"), ("/console/workflows", "workflows"),
                           ("/console/lists", "lists"), ("/console/connectors", "connectors"), ("/console/audit", "audit")]:
            driver.get(base + path)
            assert "Sign out" in text(), path
            shot(name)

        # Signing out closes the pages.
        driver.find_element(By.XPATH, "//button[text()='Sign out']").click()
        wait_for(lambda: driver.current_url.endswith("/console/login"), "the sign-in page after signing out")
        driver.get(base + "/console/runs")
        assert driver.current_url.endswith("/console/login"), driver.current_url
        print(f"browser test: passed; {len(os.listdir(out))} screenshots in {out}")
    except Exception:
        if driver is not None:
            try:
                driver.save_screenshot(os.path.join(out, "failure.png"))
                print("page at failure:", driver.current_url, file=sys.stderr)
            except Exception:
                pass
        log_path = os.path.join(work, "processes.log")
        if os.path.exists(log_path):
            print(open(log_path).read()[-4000:], file=sys.stderr)
        raise
    finally:
        if driver is not None:
            driver.quit()
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
