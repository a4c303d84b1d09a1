// End-to-end test of the gpt-ls VS Code extension in real VS Code (code-server), driven
// through headless Chromium. The language server is the real one (the repo's Python), the
// model is tests/support/fakeopenai.py over real HTTP on 127.0.0.1.
//
// Environment:
//   CODE_SERVER   code-server executable (required)
//   VSIX          the packaged extension (required)
//   GPT_LS_PYTHON a Python with gpt-ls installed (default: <repo>/.venv/bin/python)
//   CHROMIUM      default /usr/lib/chromium/chromium
//   ARTIFACTS     where screenshots and logs go (default: <repo>/artifacts/vscode)
//   SCREENSHOTS   when set, a folder that also gets the README's screenshots under their
//                 plain names (.ci/vscode.sh sets it to docs/screenshots only when asked)
//   E2E_TIMEOUT   overall limit in seconds (default 600)
//   VSCODE_E2E_ONLY=completions  run only the start-up checks and completions as you type
//
// A second code-server with workspace trust on (no --disable-workspace-trust) then opens a
// hostile folder in Restricted Mode: the stored key is not sent, workspaceTrusted: false
// reaches the server, the folder's settings never apply, and granting trust restarts the
// server with the key.
//
// It prints one line per check and ends with "vscode: N passed, N failed".

import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, "..", "..");
const CODE_SERVER = requireEnv("CODE_SERVER");
const VSIX = path.resolve(requireEnv("VSIX"));
const PYTHON = process.env.GPT_LS_PYTHON || path.join(REPO, ".venv", "bin", "python");
const CHROMIUM = process.env.CHROMIUM || "/usr/lib/chromium/chromium";
const ARTIFACTS = path.resolve(process.env.ARTIFACTS || path.join(REPO, "artifacts", "vscode"));
const SCREENSHOTS = process.env.SCREENSHOTS ? path.resolve(process.env.SCREENSHOTS) : null;
const OVERALL = Number(process.env.E2E_TIMEOUT || 600) * 1000;
const API_KEY = "sk-vscode-e2e-0123456789abcdef";
const WAIT = 30_000;
const ONLY = process.env.VSCODE_E2E_ONLY || "";

// The document: Chinese text and emoji (astral characters are two UTF-16 units each).
const QUESTION = "量子纠缠是什么？请用一句话解释。🤔";
const CODE_LINE = "函数 f(x) = x² 的导数是 2x 🧮 (derivative)";
const NOTES = "明天下午三点和王经理开会，讨论预算 💰 和 Q3 路线图";
const FILE_TEXT = [
  "# 会议笔记 Meeting notes 📝",
  "",
  QUESTION,
  "",
  CODE_LINE,
  "",
  NOTES,
  "",
].join("\n");

const ASK_REPLY = "量子纠缠：两个粒子无论相距多远，状态都相互关联。🔗 Entangled!";
const CONTINUE_REPLY = "再补充一句：测量一个粒子会立刻决定另一个的结果 ⚡ (follow-up)";
const EXPLAIN_REPLY = "**导数**解释：x² 的变化率是 2x 📈 — derivative explained.";
const EMAIL_REPLY = "Subject: 明天的预算会议 📅\n\n王经理您好，\n\n明天下午三点开会讨论预算和 Q3 路线图。\n\n此致";
const TRANSLATION = "Meeting with Manager Wang tomorrow at 3 pm about the budget 💰 and the Q3 roadmap";
const SUMMARY = "摘要：明天三点预算会议 📅 — a budget meeting tomorrow at 3 pm.";
const SLOW_REPLY = "这是一个很慢的回答 🐢 " + "慢".repeat(60) + " END-OF-SLOW-REPLY";

// Completions as you type: the file typed into, and the fake model's suggestion for it.
const FIB_TEXT = "# 斐波那契数列 🐇\ndef fib(n):\n    \n";
const FIB_TYPED = "return ";
const FIB_SUGGESTION = "n if n < 2 else fib(n - 1) + fib(n - 2)  # 递归 🌀";

function requireEnv(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`FAIL: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const results = [];
const children = [];
let tmpDir;
let workspaceDir;
let page;
let shot = 0;

function log(...args) {
  console.log(`[${new Date().toISOString().slice(11, 19)}]`, ...args);
}

async function screenshot(name, { readme = false } = {}) {
  if (!page) return;
  shot += 1;
  const file = path.join(ARTIFACTS, `${String(shot).padStart(2, "0")}-${name}.png`);
  try {
    await page.screenshot({ path: file });
    if (readme && SCREENSHOTS) fs.copyFileSync(file, path.join(SCREENSHOTS, `${name}.png`));
  } catch (err) {
    log(`(screenshot ${name} failed: ${err.message})`);
  }
}

/** One named check: logged, timed, screenshotted on failure; a failure stops the run.
 * With VSCODE_E2E_ONLY set, only checks whose `only` names it (and `always` ones) run. */
async function check(name, fn, { always = false, only = "" } = {}) {
  if (ONLY && !always && only !== ONLY) {
    log(`SKIP ${name} (VSCODE_E2E_ONLY=${ONLY})`);
    return;
  }
  const started = Date.now();
  try {
    await fn();
    results.push({ name, ok: true });
    log(`PASS ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (err) {
    results.push({ name, ok: false, error: err });
    log(`FAIL ${name}: ${err && err.stack ? err.stack : err}`);
    await screenshot(`FAILED-${name.replace(/[^a-z0-9]+/gi, "-")}`);
    throw err;
  }
}

/** Retry a flaky UI step a few times, with a short pause between tries. */
async function retry(label, fn, tries = 3) {
  let last;
  for (let i = 1; i <= tries; i++) {
    try {
      return await fn();
    } catch (err) {
      last = err;
      log(`  retry ${label} (${i}/${tries}): ${String(err.message || err).split("\n")[0]}`);
      await screenshot(`retry-${label.replace(/[^a-z0-9]+/gi, "-")}-${i}`);
      await page.keyboard.press("Escape").catch(() => {});
      await sleep(700);
    }
  }
  throw last;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(label, fn, timeout = WAIT, interval = 250) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await sleep(interval);
  }
  throw new Error(`timed out after ${timeout / 1000} s waiting for ${label}${last ? `: ${last.message}` : ""}`);
}

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

function start(name, cmd, args, options) {
  const out = fs.openSync(path.join(ARTIFACTS, `${name}.log`), "w");
  const child = spawn(cmd, args, { ...options, stdio: ["ignore", "pipe", out], detached: true });
  child.stdout.on("data", (d) => fs.writeSync(out, d));
  children.push(child);
  return child;
}

function stopAll() {
  for (const child of children.reverse()) {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        /* already gone */
      }
    }
  }
}

// ---------------------------------------------------------------- fake API

async function startFake(name = "fakeopenai", key = API_KEY) {
  const keyArgs = key ? ["--api-key", key] : [];
  const child = start(name, PYTHON, [path.join(REPO, "tests", "support", "fakeopenai.py"), "--port", "0", ...keyArgs], {
    cwd: REPO,
  });
  const url = await new Promise((resolve, reject) => {
    let buf = "";
    const timer = setTimeout(() => reject(new Error("fakeopenai did not print its URL")), 20_000);
    child.stdout.on("data", (d) => {
      buf += d.toString();
      const m = buf.match(/http:\/\/127\.0\.0\.1:\d+\/v1/);
      if (m) {
        clearTimeout(timer);
        resolve(m[0]);
      }
    });
    child.on("exit", (code) => reject(new Error(`fakeopenai exited with ${code}`)));
  });
  return url;
}

async function script(apiUrl, ...behaviours) {
  const res = await fetch(`${apiUrl}/_script`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(behaviours),
  });
  if (!res.ok) throw new Error(`/_script answered ${res.status}`);
}

async function chatRequests(apiUrl) {
  const res = await fetch(`${apiUrl}/_requests`);
  const all = await res.json();
  return all.filter((r) => r.path.endsWith("/chat/completions"));
}

// ---------------------------------------------------------------- the editor

/** The editor's text as shown: view lines sorted by their position on screen. */
async function editorText() {
  return page.evaluate(() => {
    const editor = document.querySelector(".editor-instance .monaco-editor .view-lines");
    if (!editor) return "";
    const lines = [...editor.querySelectorAll(".view-line")].map((el) => ({
      top: parseFloat(el.style.top || "0"),
      text: el.textContent.replace(/\u00a0/g, " "),
    }));
    lines.sort((a, b) => a.top - b.top);
    return lines.map((l) => l.text).join("\n");
  });
}

async function waitForEditorText(label, expected, timeout = WAIT) {
  const parts = expected.split("\n").filter((p) => p.trim());
  return waitFor(`${label}: editor to show ${JSON.stringify(expected)}`, async () => {
    const text = await editorText();
    return parts.every((p) => text.includes(p)) ? text : false;
  }, timeout);
}

async function focusEditor() {
  await page.locator(".editor-instance .monaco-editor .view-lines").first().click({ position: { x: 5, y: 5 } });
}

/** Select the whole line that contains `text` (found in the rendered editor). */
async function selectLine(text) {
  const lines = (await editorText()).split("\n");
  const index = lines.findIndex((l) => l.includes(text));
  if (index < 0) throw new Error(`line with ${JSON.stringify(text)} is not in the editor`);
  await focusEditor();
  await retry("go to line", async () => {
    await page.keyboard.press("Control+G");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ state: "visible", timeout: 5000 });
    await input.fill(`:${index + 1}`);
    await page.keyboard.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5000 });
  });
  await page.keyboard.press("Home");
  await page.keyboard.press("Shift+End");
  await waitFor("the selection", async () => (await page.locator(".editor-instance .selected-text").count()) > 0, 5000);
  return index;
}

/** The middle of the on-screen text of the line holding `text`. */
async function pointOnLine(text) {
  const box = await page.evaluate((needle) => {
    const lines = [...document.querySelectorAll(".editor-instance .monaco-editor .view-line")];
    const line = lines.find((el) => el.textContent.replace(/\u00a0/g, " ").includes(needle));
    if (!line) return null;
    const span = line.firstElementChild || line;
    const r = span.getBoundingClientRect();
    return { x: r.left + Math.min(r.width / 2, 120), y: r.top + r.height / 2 };
  }, text);
  if (!box) throw new Error(`line with ${JSON.stringify(text)} is not on screen`);
  return box;
}

/** Open the Refactor menu (Ctrl+Shift+R) and pick `title`; `before` runs while it is open. */
async function runFromRefactorMenu(title, before = async () => {}) {
  const item = await retry("refactor menu", async () => {
    await page.keyboard.press("Control+Shift+R");
    const found = page.locator(".action-widget .monaco-list-row", { hasText: title }).first();
    await found.waitFor({ state: "visible", timeout: 5000 });
    await before();
    return found;
  });
  await item.click();
}

/** Run a command from the palette; the click happens once, after the row is found.
 * `opensInput`: the command opens an input or a pick (true, or the title it shows). */
async function runFromPalette(title, { opensInput = false } = {}) {
  const row = await retry(`palette ${title}`, async () => {
    await page.keyboard.press("F1");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ state: "visible", timeout: 5000 });
    await input.fill(`>${title}`);
    const found = page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first();
    await found.waitFor({ state: "visible", timeout: 5000 });
    return found;
  });
  await row.click();
  if (opensInput) {
    const expected = typeof opensInput === "string" ? opensInput : title;
    await page.locator(".quick-input-widget .quick-input-title", { hasText: expected }).waitFor({ state: "visible", timeout: 10_000 });
  } else {
    await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5000 });
  }
}

/** Replace the fake model's rules: each answers every request whose body contains its needle. */
async function setRules(apiUrl, ...rules) {
  const res = await fetch(`${apiUrl}/_rules`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(rules),
  });
  if (!res.ok) throw new Error(`/_rules answered ${res.status}`);
}

/** Open `name` with Quick Open and wait until the editor shows `text`. */
async function openFile(name, text) {
  await retry("quick open", async () => {
    await page.keyboard.press("Control+P");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ state: "visible", timeout: 5000 });
    await input.fill(name);
    await page.locator(".quick-input-list .monaco-list-row", { hasText: name }).first().waitFor({ state: "visible", timeout: 5000 });
    await page.keyboard.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5000 });
  });
  await page.locator(".tabs-container .tab.active", { hasText: name }).first().waitFor({ state: "visible", timeout: WAIT });
  await waitForEditorText(`the opened ${name}`, text);
}

/** Put the cursor at the start of line `n` (1-based) with Go to Line. */
async function gotoLine(n) {
  await retry("go to line", async () => {
    await page.keyboard.press("Control+G");
    const input = page.locator(".quick-input-widget input");
    await input.waitFor({ state: "visible", timeout: 5000 });
    await input.fill(`:${n}`);
    await page.keyboard.press("Enter");
    await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5000 });
  });
}

/** The HTML of the extension's completions status bar item (its icon says on or off). */
async function completionsItemHtml() {
  const item = page.locator(".statusbar-item", { hasText: "Completions" }).first();
  return (await item.count()) ? item.innerHTML() : "";
}

/** The extension's status bar item (not the progress item, which reads "gpt-ls: …"). */
function gptItem() {
  return page.locator(".statusbar-item", { hasText: /(^|\s)GPT(\s|$)/ }).first();
}

async function statusText() {
  const item = gptItem();
  return (await item.count()) ? (await item.innerText()).trim() : "";
}

/** Wait until no request runs (the status bar stops counting tokens): the reply's last
 * edits are in, so the next check sees the document's final lines. */
async function waitForIdle(label) {
  await waitFor(`${label}: the request to end`, async () => !/tokens/.test(await statusText()), WAIT, 100);
}

/** The text of the notification toasts (and of the notification center, when asked). */
async function notificationsText(center = false) {
  const selector = center
    ? ".notifications-toasts .notification-list-item-message, .notifications-center .notification-list-item-message"
    : ".notifications-toasts .notification-list-item-message";
  return page.evaluate((sel) => [...document.querySelectorAll(sel)].map((el) => el.textContent).join("\n"), selector);
}

async function clearNotifications() {
  await page.keyboard.press("Escape").catch(() => {});
  await runFromPalette("Notifications: Clear All Notifications").catch(() => {});
}

function lastMessages(requests) {
  const last = requests[requests.length - 1];
  return last && last.body && Array.isArray(last.body.messages) ? last.body.messages : [];
}

function contentOf(message) {
  return typeof message.content === "string" ? message.content : JSON.stringify(message.content);
}

// ---------------------------------------------------------------- main

async function main() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  if (SCREENSHOTS) fs.mkdirSync(SCREENSHOTS, { recursive: true });
  for (const f of fs.readdirSync(ARTIFACTS)) fs.rmSync(path.join(ARTIFACTS, f), { recursive: true, force: true });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "gpt-ls-vscode-"));
  tmpDir = tmp;
  const userData = path.join(tmp, "user-data");
  const extensions = path.join(tmp, "extensions");
  const workspace = path.join(tmp, "工作区 workspace");
  workspaceDir = workspace;
  fs.mkdirSync(path.join(userData, "User"), { recursive: true });
  fs.mkdirSync(workspace, { recursive: true });
  fs.writeFileSync(path.join(workspace, "notes.txt"), FILE_TEXT);
  fs.writeFileSync(path.join(workspace, "fib.py"), FIB_TEXT);
  log(`temp dir ${tmp}`);

  if (!fs.existsSync(PYTHON)) throw new Error(`no Python at ${PYTHON}: create the repo's .venv first (pip install -e .[test])`);
  const probe = spawnSync(PYTHON, ["-c", "import gpt_ls.lsp.server"], { encoding: "utf8" });
  if (probe.status !== 0) throw new Error(`${PYTHON} cannot import gpt_ls.lsp.server:\n${probe.stderr}`);

  const apiUrl = await startFake();
  log(`fake OpenAI at ${apiUrl}`);

  const settingsFile = path.join(userData, "User", "settings.json");
  const settings = {
    "gpt-ls.pythonPath": PYTHON,
    "gpt-ls.baseUrl": apiUrl,
    "gpt-ls.readTimeout": 30,
    // Every LSP message with its parameters goes to the log (initialize carries the key).
    "gpt-ls.trace.server": "verbose",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.enableExperiments": false,
    "workbench.welcomePage.walkthroughs.openOnInstall": false,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "chat.disableAIFeatures": true,
    "chat.commandCenter.enabled": false,
    "extensions.ignoreRecommendations": true,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "security.workspace.trust.enabled": false,
    "editor.renderWhitespace": "none",
    "editor.minimap.enabled": false,
    "editor.hover.delay": 150,
    "editor.fontSize": 16,
    "editor.unicodeHighlight.ambiguousCharacters": false,
    "editor.unicodeHighlight.invisibleCharacters": false,
    "files.autoSave": "off",
    "window.commandCenter": false,
  };
  fs.writeFileSync(settingsFile, JSON.stringify(settings, null, 2));

  const env = { ...process.env };
  for (const k of Object.keys(env)) {
    if (/^(OPENAI_|AZURE_OPENAI|HTTPS?_PROXY$|ALL_PROXY$|https?_proxy$|all_proxy$)/.test(k)) delete env[k];
  }
  Object.assign(env, {
    GPT_LS_DATA_DIR: path.join(tmp, "gpt-ls-data"),
    GPT_LS_CONFIG_DIR: path.join(tmp, "gpt-ls-config"),
    GPT_LS_CACHE_DIR: path.join(tmp, "gpt-ls-cache"),
    NO_PROXY: "127.0.0.1,localhost",
  });

  await check("install the .vsix into code-server", async () => {
    const res = spawnSync(CODE_SERVER, ["--user-data-dir", userData, "--extensions-dir", extensions, "--install-extension", VSIX], {
      encoding: "utf8",
      env,
      timeout: 120_000,
    });
    fs.writeFileSync(path.join(ARTIFACTS, "install-extension.log"), `${res.stdout}\n${res.stderr}`);
    if (res.status !== 0 || !/successfully installed/i.test(res.stdout + res.stderr)) {
      throw new Error(`code-server --install-extension failed (${res.status}):\n${res.stdout}\n${res.stderr}`);
    }
  }, { always: true });

  const port = await freePort();
  const config = path.join(tmp, "code-server.yaml");
  fs.writeFileSync(config, "auth: none\ncert: false\n");
  start("code-server", CODE_SERVER, [
    "--config", config,
    "--user-data-dir", userData,
    "--extensions-dir", extensions,
    "--bind-addr", `127.0.0.1:${port}`,
    "--auth", "none",
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
    "--disable-getting-started-override",
    // Trace level: the gpt-ls channel then carries every LSP message, so the key check
    // below also covers the message trace.
    "--log", "trace",
    workspace,
  ], { env, cwd: tmp });
  const base = `http://127.0.0.1:${port}`;

  await check("code-server answers", async () => {
    await waitFor("code-server /healthz", async () => (await fetch(`${base}/healthz`)).ok, 60_000, 500);
  }, { always: true });

  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run",
    ],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  page = await context.newPage();
  page.on("console", (msg) => {
    if (msg.type() === "error") fs.appendFileSync(path.join(ARTIFACTS, "browser-console.log"), `${msg.text()}\n`);
  });

  try {
    await check("workbench loads with the folder", async () => {
      await page.goto(`${base}/?folder=${encodeURIComponent(workspace)}`, { timeout: 60_000 });
      await page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 90_000 });
    }, { always: true });

    await check("extension starts the server (status bar)", async () => {
      const text = await waitFor("the GPT status bar item", async () => {
        const t = await statusText();
        return t ? t : false;
      }, 90_000);
      await waitFor("the server to be running", async () => {
        const t = await statusText();
        if (/codicon-error/.test(await gptItem().innerHTML())) {
          throw new Error(`status bar shows the server stopped: ${t}`);
        }
        return t.includes("GPT");
      }, 60_000);
      log(`  status bar: ${JSON.stringify(text)}`);
    }, { always: true });

    await check("GPT: Set API key stores the key (SecretStorage)", async () => {
      await runFromPalette("GPT: Set API key", { opensInput: true });
      const input = page.locator(".quick-input-widget input");
      await input.waitFor({ state: "visible", timeout: 10_000 });
      await input.fill(API_KEY);
      await page.keyboard.press("Enter");
      await waitFor("the 'API key stored' message", async () => (await notificationsText()).includes("API key stored"));
      await clearNotifications();
    }, { always: true });

    await check("open a file with Chinese text and emoji", async () => {
      await retry("quick open", async () => {
        await page.keyboard.press("Control+P");
        const input = page.locator(".quick-input-widget input");
        await input.waitFor({ state: "visible", timeout: 5000 });
        await input.fill("notes.txt");
        const row = page.locator(".quick-input-list .monaco-list-row", { hasText: "notes.txt" }).first();
        await row.waitFor({ state: "visible", timeout: 5000 });
        await page.keyboard.press("Enter");
        await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5000 });
      });
      await waitForEditorText("the opened file", QUESTION);
      await screenshot("opened-file");
    }, { always: true });

    await check("Ask from the Refactor menu streams the reply into the editor", async () => {
      await selectLine(QUESTION);
      await script(apiUrl, { kind: "reply", text: ASK_REPLY, chunk_size: 3, delay: 0.08 });
      await runFromRefactorMenu("GPT: Ask", async () => {
        for (const title of ["GPT: Explain selection", "GPT: Draft email", "GPT: Continue conversation"]) {
          await page.locator(".action-widget .monaco-list-row", { hasText: title }).first().waitFor({ state: "visible", timeout: 3000 });
        }
        await screenshot("action-menu", { readme: true });
      });
      const during = await waitFor("the status bar to count tokens", async () => {
        const t = await statusText();
        return /tokens/.test(t) ? t : false;
      }, 20_000, 100).catch(() => "");
      if (during) {
        log(`  status bar while streaming: ${JSON.stringify(during)}`);
        await screenshot("streaming");
      }
      await waitForEditorText("Ask", ASK_REPLY);
      await sleep(300);
      await screenshot("streamed-reply", { readme: true });
      const reqs = await chatRequests(apiUrl);
      if (reqs.length !== 1) throw new Error(`expected 1 chat request, the fake API saw ${reqs.length}`);
      if (reqs[0].headers.Authorization !== `Bearer ${API_KEY}` && reqs[0].headers.authorization !== `Bearer ${API_KEY}`) {
        throw new Error("the request did not carry the key set with GPT: Set API key");
      }
      const user = lastMessages(reqs).filter((m) => m.role === "user").map(contentOf).join("\n");
      if (!user.includes(QUESTION)) throw new Error(`the selection did not reach the model intact; user message: ${user}`);
      const text = await editorText();
      const lines = text.split("\n");
      const q = lines.findIndex((l) => l.includes(QUESTION));
      const r = lines.findIndex((l) => l.includes(ASK_REPLY));
      if (!(r > q)) throw new Error(`the reply is not below the question:\n${text}`);
    });

    await check("a failing command shows the server's sentence (Refactor menu on an empty line)", async () => {
      await clearNotifications();
      await focusEditor();
      await page.keyboard.press("Control+Home");
      await page.keyboard.press("ArrowDown"); // line 2 is empty
      await runFromRefactorMenu("GPT: Ask");
      const text = await waitFor("the error message", async () => {
        const t = await notificationsText();
        return /selection is empty/.test(t) ? t : false;
      });
      if (!text.startsWith("gpt-ls: ")) throw new Error(`unexpected message: ${text}`);
      await sleep(500);
      await screenshot("error-message");
      await clearNotifications();
    });

    await check("settings changes reach the running server (model)", async () => {
      const before = countInLogs(userData, "Sending notification 'workspace/didChangeConfiguration'");
      await runFromPalette("Preferences: Open Settings (UI)");
      const search = page.locator(".settings-editor .settings-header .monaco-editor").first();
      await search.waitFor({ state: "visible", timeout: WAIT });
      await search.click();
      await page.keyboard.type("gpt-ls.model");
      const input = page.locator(".settings-editor .setting-item", { hasText: "The chat model to use." }).locator("input").first();
      await input.waitFor({ state: "visible", timeout: WAIT });
      await input.fill("gpt-4o-mini");
      await input.press("Tab");
      await screenshot("settings", { readme: true });
      await waitFor("workspace/didChangeConfiguration after changing the setting", async () =>
        countInLogs(userData, "Sending notification 'workspace/didChangeConfiguration'") > before, 20_000, 500);
      if (!JSON.parse(fs.readFileSync(settingsFile, "utf8"))["gpt-ls.model"]) throw new Error("settings.json did not get gpt-ls.model");
      await page.keyboard.press("Control+W");
      await page.locator(".settings-editor").waitFor({ state: "hidden", timeout: 10_000 });
    });

    await check("Continue conversation from the palette includes the earlier exchange", async () => {
      await selectLine(ASK_REPLY);
      await script(apiUrl, { kind: "reply", text: CONTINUE_REPLY, chunk_size: 4 });
      await runFromPalette("GPT: Continue conversation");
      await waitForEditorText("Continue", CONTINUE_REPLY);
      await waitForIdle("Continue");
      const reqs = await chatRequests(apiUrl);
      const body = reqs[reqs.length - 1].body;
      if (body.model !== "gpt-4o-mini") throw new Error(`the changed model setting did not apply: model ${body.model}`);
      const all = lastMessages(reqs).map(contentOf).join("\n");
      if (!all.includes(ASK_REPLY)) throw new Error(`the follow-up does not carry the earlier reply:\n${all}`);
    });

    await check("Explain selection shows a hover over the explained text", async () => {
      await selectLine(CODE_LINE);
      await script(apiUrl, { kind: "reply", text: EXPLAIN_REPLY, chunk_size: 5 });
      await runFromPalette("GPT: Explain selection");
      const plain = EXPLAIN_REPLY.replace(/\*\*/g, "");
      // The extension shows the hover at the cursor when the explanation arrives...
      await waitFor("the explanation hover after the command", async () => {
        const t = await page.locator(".monaco-hover-content:visible").allInnerTexts();
        return t.some((x) => x.includes("x² 的变化率是 2x 📈"));
      }, WAIT);
      // ... and hovering the explained text shows it again.
      await page.keyboard.press("Escape");
      await page.mouse.move(5, 5);
      await page.locator(".monaco-hover-content:visible").first().waitFor({ state: "hidden", timeout: 5000 }).catch(() => {});
      await retry("hover", async () => {
        const p = await pointOnLine(CODE_LINE);
        await page.mouse.move(p.x - 20, p.y);
        await page.mouse.move(p.x, p.y, { steps: 5 });
        await waitFor("the hover over the explained line", async () => {
          const t = await page.locator(".monaco-hover-content:visible").allInnerTexts();
          return t.some((x) => x.replace(/\s+/g, " ").includes(plain.replace(/\s+/g, " ")));
        }, 8000);
      });
      await screenshot("hover", { readme: true });
      const text = await editorText();
      if (text.includes("x² 的变化率是 2x 📈")) throw new Error("the explanation was inserted into the document instead of shown as hover");
      await page.mouse.move(5, 5);
    });

    await check("Draft email from the editor's context menu", async () => {
      await selectLine(NOTES);
      await script(apiUrl, { kind: "reply", text: EMAIL_REPLY, chunk_size: 6 });
      await retry("context menu", async () => {
        // Right-click inside the selected line, so that the selection stays.
        const p = await pointOnLine(NOTES);
        await page.mouse.click(p.x, p.y, { button: "right" });
        const item = page.locator(".monaco-menu .action-item", { hasText: "Draft email" }).first();
        await item.waitFor({ state: "visible", timeout: 5000 });
        await screenshot("context-menu");
        await item.click();
      });
      await waitForEditorText("Draft email", EMAIL_REPLY);
      await waitForIdle("Draft email");
      const user = lastMessages(await chatRequests(apiUrl)).filter((m) => m.role === "user").map(contentOf).join("\n");
      if (!user.includes(NOTES)) throw new Error(`the notes did not reach the model intact: ${user}`);
      await screenshot("draft-email");
    });

    await check("Run action… lists the whole catalog and runs Translate (gpt-ls.run)", async () => {
      await selectLine(NOTES);
      await script(apiUrl, { kind: "reply", text: TRANSLATION, chunk_size: 7 });
      await runFromPalette("GPT: Run action…", { opensInput: "GPT: Run action" });
      const row = page.locator(".quick-input-list .monaco-list-row", { hasText: "GPT: Translate" }).first();
      await row.waitFor({ state: "visible", timeout: WAIT });
      for (const title of ["GPT: Ask", "GPT: Summarize", "GPT: Ask about this file"]) {
        await page.locator(".quick-input-list .monaco-list-row", { hasText: title }).first().waitFor({ state: "attached", timeout: 5000 });
      }
      await screenshot("run-action");
      await row.click();
      await waitForEditorText("Translate", TRANSLATION);
      await waitForIdle("Translate");
      const user = lastMessages(await chatRequests(apiUrl)).filter((m) => m.role === "user").map(contentOf).join("\n");
      if (!user.includes(NOTES)) throw new Error(`the text to translate did not reach the model intact: ${user}`);
    });

    await check("Summarize from Run action… shows its reply as a hover (output = hover)", async () => {
      await selectLine(NOTES);
      await script(apiUrl, { kind: "reply", text: SUMMARY, chunk_size: 6 });
      await runFromPalette("GPT: Run action…", { opensInput: "GPT: Run action" });
      const row = page.locator(".quick-input-list .monaco-list-row", { hasText: "GPT: Summarize" }).first();
      await row.waitFor({ state: "visible", timeout: WAIT });
      await row.click();
      await waitFor("the summary hover after the command", async () => {
        const t = await page.locator(".monaco-hover-content:visible").allInnerTexts();
        return t.some((x) => x.includes("明天三点预算会议 📅"));
      }, WAIT);
      await screenshot("summary-hover");
      if ((await editorText()).includes("明天三点预算会议")) throw new Error("the summary was inserted into the document instead of shown as hover");
      const user = lastMessages(await chatRequests(apiUrl)).filter((m) => m.role === "user").map(contentOf).join("\n");
      if (!user.includes(NOTES)) throw new Error(`the text to summarize did not reach the model intact: ${user}`);
      await page.keyboard.press("Escape");
      await page.mouse.move(5, 5);
    });

    await check("Check connection reports the answer from the API", async () => {
      await clearNotifications();
      const before = (await chatRequests(apiUrl)).length;
      await runFromPalette("GPT: Check connection");
      // VS Code cuts long messages: the notification shows the start of the report and the
      // extension writes the whole report to the gpt-ls output channel.
      const text = await waitFor("the check report", async () => {
        const t = await notificationsText(true);
        return t.includes("gpt-ls check") ? t : false;
      });
      if (!text.includes(apiUrl)) throw new Error(`the report does not name the endpoint ${apiUrl}: ${text}`);
      if (text.includes(API_KEY)) throw new Error("the report shows the whole API key");
      await waitFor("the whole report with the verdict in the gpt-ls log", async () => countInLogs(userData, "answered in") > 0, 10_000);
      if ((await chatRequests(apiUrl)).length !== before + 1) throw new Error("the check did not make exactly one request");
      await screenshot("check-connection");
      await clearNotifications();
    });

    await check("New conversation and Show history", async () => {
      await runFromPalette("GPT: New conversation");
      await waitFor("the 'new conversation' message", async () => /new conversation started/i.test(await notificationsText()));
      await clearNotifications();
      await runFromPalette("GPT: Show history");
      await page.locator(".tabs-container .tab", { hasText: "history.md" }).first().waitFor({ state: "visible", timeout: WAIT });
      const text = await waitForEditorText("Show history", "gpt-ls history");
      // The Ask conversation (with its follow-up) and the e-mail are listed.
      const listed = text.split("\n").filter((l) => /messages/.test(l));
      if (listed.length < 2) throw new Error(`expected at least 2 conversations in the history:\n${text}`);
      await screenshot("history");
      await page.keyboard.press("Control+W");
      await page.locator(".tabs-container .tab", { hasText: "history.md" }).first().waitFor({ state: "hidden", timeout: 10_000 });
      await page.locator(".tabs-container .tab.active", { hasText: "notes.txt" }).first().waitFor({ state: "visible", timeout: 10_000 });
    });

    await check("the status bar item cancels a running request", async () => {
      await selectLine(QUESTION);
      await script(apiUrl, { kind: "reply", text: SLOW_REPLY, chunk_size: 2, delay: 0.25 });
      await runFromPalette("GPT: Ask");
      const item = gptItem();
      await waitFor("the status bar to count tokens", async () => /tokens/.test(await statusText()), WAIT, 100);
      await waitForEditorText("the start of the slow reply", "这是一个很慢的回答");
      await screenshot("status-running");
      await item.click();
      await waitFor("the status bar to go idle", async () => !/tokens/.test(await statusText()), WAIT);
      await sleep(1500);
      const text = await editorText();
      if (text.includes("END-OF-SLOW-REPLY")) throw new Error("the reply finished although it was cancelled");
      await screenshot("cancelled");
    });

    await check("GPT: Toggle completions as you type turns them on (user setting, status bar, server told)", async () => {
      if (!/codicon-circle-slash/.test(await completionsItemHtml())) throw new Error("the status bar does not show completions off at first");
      await runFromPalette("GPT: Toggle completions as you type");
      await waitFor("gpt-ls.completions: true in the user's settings.json", async () =>
        JSON.parse(fs.readFileSync(settingsFile, "utf8"))["gpt-ls.completions"] === true, WAIT, 200);
      await waitFor("the status bar to show completions on", async () => /codicon-sparkle/.test(await completionsItemHtml()), WAIT, 200);
      // The setting reaches the server through the normal path: workspace/didChangeConfiguration.
      await waitFor("didChangeConfiguration carrying completions: true", async () =>
        countInLogs(userData, '"completions": true') > 0, WAIT, 300);
      // ... and the server registers inline completion with VS Code (it was off at start).
      await waitFor("client/registerCapability for textDocument/inlineCompletion", async () =>
        countInLogs(userData, "Received request 'client/registerCapability") > 0
        && countInLogs(userData, '"method": "textDocument/inlineCompletion"') > 0, WAIT, 300);
    }, { only: "completions" });

    await check("completions as you type: ghost text after a pause, Tab accepts it exactly", async () => {
      await setRules(apiUrl, { needle: "def fib(n):", kind: "reply", text: FIB_SUGGESTION, chunk_size: 5 });
      await openFile("fib.py", "def fib(n):");
      const before = (await chatRequests(apiUrl)).length;
      await gotoLine(3);
      await page.keyboard.press("End");
      await page.keyboard.type(FIB_TYPED, { delay: 40 });
      // The suggestion shows as ghost text after the typed text, not yet in the document.
      await waitFor("the ghost text", async () => {
        const ghost = await page.locator(".editor-instance .ghost-text-decoration, .editor-instance .ghost-text").count();
        return ghost > 0 && (await editorText()).includes(`    ${FIB_TYPED}${FIB_SUGGESTION}`);
      }, WAIT, 100);
      await screenshot("ghost-text", { readme: true });
      await page.keyboard.press("Tab");
      await waitFor("the ghost text to be accepted", async () =>
        (await page.locator(".editor-instance .ghost-text-decoration, .editor-instance .ghost-text").count()) === 0, 10_000, 100);
      await page.keyboard.press("Control+S");
      const expected = `# 斐波那契数列 🐇\ndef fib(n):\n    ${FIB_TYPED}${FIB_SUGGESTION}\n`;
      const file = path.join(workspaceDir, "fib.py");
      await waitFor("fib.py saved with the accepted suggestion", async () => fs.readFileSync(file, "utf8") === expected, 10_000, 100)
        .catch(() => { throw new Error(`fib.py holds ${JSON.stringify(fs.readFileSync(file, "utf8"))}, expected ${JSON.stringify(expected)}`); });
      const asked = (await chatRequests(apiUrl)).slice(before);
      if (asked.length === 0) throw new Error("the fake model was never asked for a suggestion");
      log(`  the model was asked ${asked.length} time(s) while typing ${JSON.stringify(FIB_TYPED)}`);
    }, { only: "completions" });

    await check("clicking the status bar item turns completions off: typing shows no suggestion", async () => {
      const item = page.locator(".statusbar-item", { hasText: "Completions" }).first();
      await item.click();
      await waitFor("gpt-ls.completions: false in the user's settings.json", async () =>
        JSON.parse(fs.readFileSync(settingsFile, "utf8"))["gpt-ls.completions"] === false, WAIT, 200);
      await waitFor("the status bar to show completions off", async () => /codicon-circle-slash/.test(await completionsItemHtml()), WAIT, 200);
      await waitFor("didChangeConfiguration carrying completions: false", async () =>
        countInLogs(userData, '"completions": false') > 0, WAIT, 300);
      await waitFor("client/unregisterCapability (inline completion)", async () =>
        countInLogs(userData, "Received request 'client/unregisterCapability") > 0, WAIT, 300);
      const before = (await chatRequests(apiUrl)).length;
      await focusEditor();
      await gotoLine(3);
      await page.keyboard.press("End");
      await page.keyboard.press("Enter");
      await page.keyboard.type(FIB_TYPED, { delay: 40 });
      // Ask explicitly too (Alt+\ in VS Code): still nothing. This waits for an absence, so
      // it waits a bounded time well past the debounce.
      await runFromPalette("Trigger Inline Suggestion").catch(() => {});
      await sleep(2000);
      const ghost = await page.locator(".editor-instance .ghost-text-decoration, .editor-instance .ghost-text").count();
      if (ghost > 0) throw new Error("ghost text showed with completions off");
      const after = (await chatRequests(apiUrl)).length;
      if (after !== before) throw new Error(`the model was asked ${after - before} time(s) with completions off`);
      await page.keyboard.press("Control+Z");
      await page.keyboard.press("Control+Z");
    }, { only: "completions" });

    await check("the API key never appears in VS Code's logs", async () => {
      const hits = filesUnder(path.join(userData, "logs")).filter((p) => fs.readFileSync(p).includes(API_KEY));
      if (fs.readFileSync(settingsFile, "utf8").includes(API_KEY)) hits.push(settingsFile);
      if (hits.length) throw new Error(`the API key was written to: ${hits.join(", ")}`);
    }, { always: true });
  } finally {
    copyLogs(userData);
    await browser.close().catch(() => {});
  }
  if (!ONLY) await restrictedMode({ tmp, extensions, env });
}

// ------------------------------------------------- Restricted Mode (workspace trust on)

const ENV_KEY = "sk-env-e2e-restricted-0123456789";
const STORED_KEY = "sk-stored-e2e-restricted-9876543210";
const REPO_KEY = "sk-repo-e2e-planted-5555555555";

/** A second code-server with workspace trust on, opening a hostile folder in Restricted Mode.
 *
 * The folder's .vscode/settings.json and .gpt-ls.toml try to move requests to another
 * endpoint, add headers, run a program and pick the server program. None of it may apply;
 * the key stored with GPT: Set API key is not sent until the user trusts the folder, and
 * after trust the server restarts with it (the workspace settings still do not apply).
 */
async function restrictedMode({ tmp, extensions, env }) {
  const userApi = await startFake("fakeopenai-user", null);
  const evilApi = await startFake("fakeopenai-repo", null);
  const userData = path.join(tmp, "user-data-restricted");
  const hostile = path.join(tmp, "hostile repo");
  const marker = path.join(tmp, "PWNED-by-apiKeyCommand");
  const tomlMarker = path.join(tmp, "PWNED-by-gpt-ls-toml");
  fs.mkdirSync(path.join(userData, "User"), { recursive: true });
  fs.mkdirSync(path.join(hostile, ".vscode"), { recursive: true });
  fs.writeFileSync(path.join(hostile, "notes.txt"), FILE_TEXT);
  fs.writeFileSync(path.join(hostile, ".vscode", "settings.json"), JSON.stringify({
    "gpt-ls.baseUrl": evilApi,
    "gpt-ls.headers": { "X-Planted": "from-the-repo" },
    "gpt-ls.organization": "org-planted",
    "gpt-ls.apiKeyCommand": `touch ${JSON.stringify(marker)}`,
    "gpt-ls.pythonPath": "/bin/false",
    "gpt-ls.serverPath": "/bin/false",
    "gpt-ls.historyMaxConversations": 0,
    // Completions as you type spend the user's tokens: only the user turns them on.
    "gpt-ls.completions": true,
  }, null, 2));
  fs.writeFileSync(path.join(hostile, ".gpt-ls.toml"),
    `baseUrl = "${evilApi}"\napiKey = "${REPO_KEY}"\napiKeyCommand = "touch '${tomlMarker}'"\n[headers]\nX-Planted = "toml"\n`);
  fs.writeFileSync(path.join(userData, "User", "settings.json"), JSON.stringify({
    "gpt-ls.pythonPath": PYTHON,
    "gpt-ls.baseUrl": userApi,
    "gpt-ls.readTimeout": 30,
    "gpt-ls.trace.server": "verbose",
    "security.workspace.trust.enabled": true,
    // No modal at start: an untrusted folder opens in Restricted Mode.
    "security.workspace.trust.startupPrompt": "never",
    "security.workspace.trust.banner": "always",
    "workbench.startupEditor": "none",
    "workbench.tips.enabled": false,
    "workbench.secondarySideBar.defaultVisibility": "hidden",
    "chat.disableAIFeatures": true,
    "extensions.ignoreRecommendations": true,
    "telemetry.telemetryLevel": "off",
    "update.mode": "none",
    "editor.minimap.enabled": false,
    "editor.fontSize": 16,
    "editor.unicodeHighlight.ambiguousCharacters": false,
    "files.autoSave": "off",
    "window.commandCenter": false,
  }, null, 2));
  const port = await freePort();
  const config = path.join(tmp, "code-server-restricted.yaml");
  fs.writeFileSync(config, "auth: none\ncert: false\n");
  start("code-server-restricted", CODE_SERVER, [
    "--config", config, "--user-data-dir", userData, "--extensions-dir", extensions,
    "--bind-addr", `127.0.0.1:${port}`, "--auth", "none", "--disable-telemetry", "--disable-update-check",
    "--disable-getting-started-override", "--log", "trace", hostile,
  ], { env: { ...env, OPENAI_API_KEY: ENV_KEY }, cwd: tmp });
  const base = `http://127.0.0.1:${port}`;
  await check("Restricted Mode: code-server with workspace trust answers", async () => {
    await waitFor("code-server /healthz", async () => (await fetch(`${base}/healthz`)).ok, 60_000, 500);
  });
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, locale: "en-US" });
  page = await context.newPage();
  const apiRequests = async (url) => (await (await fetch(`${url}/_requests`)).json())
    .filter((r) => !r.path.includes("/_"));
  const authOf = (r) => r.headers.Authorization ?? r.headers.authorization;
  const noPlanted = async () => {
    const evil = await apiRequests(evilApi);
    if (evil.length) throw new Error(`the repository's endpoint got ${evil.length} request(s)`);
    for (const r of await apiRequests(userApi)) {
      const names = Object.keys(r.headers).map((h) => h.toLowerCase());
      if (names.includes("x-planted") || names.includes("openai-organization")) {
        throw new Error(`a request carried the repository's headers: ${JSON.stringify(r.headers)}`);
      }
      if (authOf(r) === `Bearer ${REPO_KEY}`) throw new Error("a request carried the repository's apiKey");
    }
    for (const m of [marker, tomlMarker]) if (fs.existsSync(m)) throw new Error(`a planted command ran: ${m} exists`);
  };
  const askQuestion = async (reply) => {
    await selectLine(QUESTION);
    await script(userApi, { kind: "reply", text: reply, chunk_size: 4 });
    await runFromPalette("GPT: Ask");
    await waitForEditorText("Ask", reply);
    await waitForIdle("Ask");
  };
  try {
    await check("Restricted Mode: the folder opens untrusted and the server starts from the user's pythonPath", async () => {
      await page.goto(`${base}/?folder=${encodeURIComponent(hostile)}`, { timeout: 60_000 });
      await page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 90_000 });
      await waitFor("the Restricted Mode indicator", async () =>
        (await page.locator(".statusbar-item", { hasText: "Restricted Mode" }).count()) > 0, 60_000);
      await waitFor("the server to be running", async () => {
        const t = await statusText();
        if (t && /codicon-error/.test(await gptItem().innerHTML())) throw new Error(`status bar shows the server stopped: ${t}`);
        return t.includes("GPT");
      }, 90_000);
      await waitFor("initialize with workspaceTrusted: false in the gpt-ls log", async () =>
        countInLogs(userData, '"workspaceTrusted": false') > 0, 20_000, 500);
      await screenshot("restricted-mode");
    });
    await check("Restricted Mode: the stored key is not sent; the repository's settings do not apply", async () => {
      await runFromPalette("GPT: Set API key", { opensInput: true });
      await page.locator(".quick-input-widget input").fill(STORED_KEY);
      await page.keyboard.press("Enter");
      await waitFor("the 'API key stored' message", async () => (await notificationsText()).includes("API key stored"));
      await clearNotifications();
      await retry("quick open", async () => {
        await page.keyboard.press("Control+P");
        const input = page.locator(".quick-input-widget input");
        await input.waitFor({ state: "visible", timeout: 5000 });
        await input.fill("notes.txt");
        await page.locator(".quick-input-list .monaco-list-row", { hasText: "notes.txt" }).first().waitFor({ state: "visible", timeout: 5000 });
        await page.keyboard.press("Enter");
        await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 5000 });
      });
      await waitForEditorText("the opened file", QUESTION);
      await askQuestion(ASK_REPLY);
      const reqs = (await apiRequests(userApi)).filter((r) => r.path.endsWith("/chat/completions"));
      if (reqs.length !== 1) throw new Error(`expected 1 chat request at the user's endpoint, it saw ${reqs.length}`);
      if (authOf(reqs[0]) !== `Bearer ${ENV_KEY}`) throw new Error(`expected the environment's key in Restricted Mode, got ${authOf(reqs[0])}`);
      await noPlanted();
      if (countInLogs(userData, STORED_KEY) || countInLogs(userData, '"apiKey"')) throw new Error("the stored key was sent to the server in Restricted Mode");
      if (countInLogs(userData, '"completions"')) throw new Error("the repository's gpt-ls.completions reached the server");
    });
    await check("Restricted Mode: trusting the folder restarts the server with the stored key", async () => {
      await runFromPalette("Workspaces: Manage Workspace Trust");
      const trust = page.locator(".workspace-trust-editor .monaco-button", { hasText: /^Trust/ }).first();
      await trust.waitFor({ state: "visible", timeout: WAIT });
      await screenshot("trust-editor");
      await trust.click();
      await waitFor("the Restricted Mode indicator to go", async () =>
        (await page.locator(".statusbar-item", { hasText: "Restricted Mode" }).count()) === 0, WAIT);
      await waitFor("the restart in the gpt-ls log", async () => countInLogs(userData, "the workspace is trusted now") > 0, WAIT, 500);
      await waitFor("initialize with workspaceTrusted: true", async () => countInLogs(userData, '"workspaceTrusted": true') > 0, WAIT, 500);
      await waitFor("the server to be running again", async () => (await statusText()).includes("GPT") && !/codicon-error/.test(await gptItem().innerHTML()), WAIT);
      await page.keyboard.press("Control+W").catch(() => {});
      await page.locator(".tabs-container .tab.active", { hasText: "notes.txt" }).first().waitFor({ state: "visible", timeout: 10_000 });
      await askQuestion(CONTINUE_REPLY);
      const reqs = (await apiRequests(userApi)).filter((r) => r.path.endsWith("/chat/completions"));
      if (reqs.length !== 2) throw new Error(`expected 2 chat requests at the user's endpoint, it saw ${reqs.length}`);
      if (authOf(reqs[1]) !== `Bearer ${STORED_KEY}`) throw new Error(`expected the stored key once trusted, got ${authOf(reqs[1])}`);
      // Trusted in VS Code, the repository's settings still do not apply: they are user settings
      // only, and its .gpt-ls.toml is not on gpt-ls's own trust list.
      await noPlanted();
      if (countInLogs(userData, '"completions"')) throw new Error("the repository's gpt-ls.completions reached the server once trusted");
      await screenshot("trusted");
    });
  } finally {
    copyLogs(userData, "vscode-logs-restricted");
    await browser.close().catch(() => {});
  }
}

/** How often `needle` occurs in the gpt-ls output channel's log (trace level: every LSP message). */
function countInLogs(userData, needle) {
  return filesUnder(path.join(userData, "logs"))
    .filter((p) => path.basename(p) === "gpt-ls.log")
    .reduce((n, p) => n + fs.readFileSync(p, "utf8").split(needle).length - 1, 0);
}

/** Every file below `dir` (none when it does not exist). */
function filesUnder(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name));
}

/** Keep VS Code's logs (the gpt-ls output channel included) with the screenshots. */
function copyLogs(userData, name = "vscode-logs") {
  const src = path.join(userData, "logs");
  if (fs.existsSync(src)) fs.cpSync(src, path.join(ARTIFACTS, name), { recursive: true });
}

const guard = setTimeout(() => {
  log(`FAIL: the whole test took longer than ${OVERALL / 1000} s`);
  stopAll();
  process.exit(1);
}, OVERALL);

let failed = false;
try {
  await main();
} catch (err) {
  failed = true;
  if (!results.some((r) => !r.ok)) log(`FAIL setup: ${err && err.stack ? err.stack : err}`);
} finally {
  clearTimeout(guard);
  stopAll();
  if (tmpDir) {
    await sleep(1000); // let code-server and the server exit before their files go
    fs.rmSync(tmpDir, { recursive: true, force: true, maxRetries: 3 });
  }
}
const passed = results.filter((r) => r.ok).length;
const bad = results.filter((r) => !r.ok).length + (failed && !results.some((r) => !r.ok) ? 1 : 0);
log(`screenshots and logs: ${ARTIFACTS}`);
console.log(`vscode: ${passed} passed, ${bad} failed`);
process.exit(bad ? 1 : 0);
