// The VS Code side of gpt-ls: start the language server, hand it the settings and the
// API key, and give its LSP commands a place in the palette, the editor's context menu
// and the status bar. Everything the model does happens in the server.

import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ResponseError,
  RevealOutputChannelOn,
  ServerOptions,
  State,
  TransportKind,
} from "vscode-languageclient/node";

const SECTION = "gpt-ls";
const SECRET_KEY = "gpt-ls.apiKey";
/** Settings read by this extension only; everything else under `gpt-ls.*` goes to the server. */
const CLIENT_ONLY = new Set(["serverPath", "pythonPath", "trace.server"]);
/** The LSP error code for a cancelled request (`RequestCancelled`). */
const REQUEST_CANCELLED = -32800;

/** Payload of the server's `gpt-ls/status` notification. */
interface Status {
  running: number;
  tokens: number;
  message: string;
}

/** A palette command and the server command it runs. */
interface Action {
  id: string;
  server: string;
  args: "selection" | "uri" | "none";
}

const ACTIONS: readonly Action[] = [
  { id: "gpt-ls.vscode.ask", server: "gpt-ls.ask", args: "selection" },
  { id: "gpt-ls.vscode.explain", server: "gpt-ls.explain", args: "selection" },
  { id: "gpt-ls.vscode.draftEmail", server: "gpt-ls.draftEmail", args: "selection" },
  { id: "gpt-ls.vscode.continue", server: "gpt-ls.continue", args: "selection" },
  { id: "gpt-ls.vscode.send", server: "gpt-ls.send", args: "uri" },
  { id: "gpt-ls.vscode.newConversation", server: "gpt-ls.newConversation", args: "uri" },
  { id: "gpt-ls.vscode.showHistory", server: "gpt-ls.showHistory", args: "none" },
  { id: "gpt-ls.vscode.check", server: "gpt-ls.check", args: "none" },
  { id: "gpt-ls.vscode.cancel", server: "gpt-ls.cancel", args: "none" },
];

let client: LanguageClient | undefined;
let apiKey: string | undefined;
let statusItem: vscode.StatusBarItem;
/** Whether completions as you type are on; a click toggles them. */
let completionsItem: vscode.StatusBarItem;
let log: vscode.LogOutputChannel;

/** Replace the API key wherever it would be written to a log (server stderr, LSP trace). */
function redact(text: string): string {
  if (!apiKey || apiKey.length < 4) {
    return text;
  }
  const escaped = JSON.stringify(apiKey).slice(1, -1);
  return text.split(apiKey).join("***").split(escaped).join("***");
}

/** An output channel whose every written string passes through `redact`. */
function redacting(channel: vscode.LogOutputChannel): vscode.LogOutputChannel {
  const writers = new Set(["append", "appendLine", "replace", "trace", "debug", "info", "warn", "error"]);
  return new Proxy(channel, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== "function") {
        return value;
      }
      if (typeof prop === "string" && writers.has(prop)) {
        return (...args: unknown[]) =>
          (value as (...a: unknown[]) => unknown).apply(
            target,
            args.map((a) => (typeof a === "string" ? redact(a) : a)),
          );
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
}

/** The settings the user set explicitly (camelCase), plus the stored API key.
 *
 * Defaults are left out on purpose: the server layers editor settings over
 * `.gpt-ls.toml`, the user's config file and the environment, and sending a default
 * would hide those.
 */
function serverSettings(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration(SECTION);
  const restricted = restrictedKeys();
  const out: Record<string, unknown> = {};
  for (const key of settingKeys()) {
    const seen = config.inspect(key);
    // A restricted setting is the user's alone (its scope is "application"); reading only the
    // user's value also holds should a workspace value ever reach `inspect`.
    const value = restricted.has(key)
      ? seen?.globalValue
      : (seen?.workspaceFolderValue ?? seen?.workspaceValue ?? seen?.globalValue);
    if (value !== undefined && value !== null) {
      out[key] = value;
    }
  }
  // In Restricted Mode the stored key stays in VS Code until the user trusts the workspace.
  if (apiKey && vscode.workspace.isTrusted) {
    out.apiKey = apiKey;
  }
  return out;
}

/** `initialize`'s options: the settings, and whether VS Code trusts the workspace.
 *
 * The server reads `workspaceTrusted` at initialize only: granting trust restarts it.
 */
function initializationOptions(): Record<string, unknown> {
  return { ...serverSettings(), workspaceTrusted: vscode.workspace.isTrusted };
}

let restrictedCache: Set<string> | undefined;

/** The settings a workspace may not set, from the manifest's `restrictedConfigurations`. */
function restrictedKeys(): Set<string> {
  if (!restrictedCache) {
    const ext = vscode.extensions.getExtension("gpt-ls.gpt-ls");
    const listed = (ext?.packageJSON?.capabilities?.untrustedWorkspaces?.restrictedConfigurations ?? []) as string[];
    restrictedCache = new Set(listed.map((k) => k.slice(SECTION.length + 1)));
  }
  return restrictedCache;
}

let keysCache: string[] | undefined;

/** The server's setting names, taken from this extension's own manifest. */
function settingKeys(): string[] {
  if (!keysCache) {
    const ext = vscode.extensions.getExtension("gpt-ls.gpt-ls");
    const props = (ext?.packageJSON?.contributes?.configuration?.properties ?? {}) as Record<string, unknown>;
    keysCache = Object.keys(props)
      .map((k) => k.slice(SECTION.length + 1))
      .filter((k) => !CLIENT_ONLY.has(k));
  }
  return keysCache;
}

/** How to start the server: `<python> -m gpt_ls` when a Python is configured, else the program. */
function serverOptions(): ServerOptions {
  const config = vscode.workspace.getConfiguration(SECTION);
  // The program to run is the user's choice only (a workspace must not pick it).
  const python = config.inspect<string | null>("pythonPath")?.globalValue;
  if (python) {
    return { command: python, args: ["-m", "gpt_ls"], transport: TransportKind.stdio };
  }
  const program = config.inspect<string>("serverPath")?.globalValue || "gpt-ls";
  return { command: program, args: [], transport: TransportKind.stdio };
}

function clientOptions(): LanguageClientOptions {
  return {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    // One channel: the server's stderr at info level, the LSP messages at trace level
    // ("Developer: Set Log Level…" → gpt-ls → Trace).
    outputChannel: log,
    // Failed commands are reported by `runAction` in one plain sentence, not by the client.
    revealOutputChannelOn: RevealOutputChannelOn.Never,
    initializationOptions: () => initializationOptions(),
    markdown: { isTrusted: false, supportHtml: false },
    middleware: {
      // Code actions (Refactor menu, light bulb) run server commands through the client:
      // report their failures the same way as the palette's.
      // A reply whose output is a hover shows at once, as from the palette.
      executeCommand: async (command, args, next) => {
        let result: unknown;
        try {
          result = await next(command, args);
        } catch (err) {
          reportFailure(err);
          return undefined;
        }
        await showHoverReply(command, result);
        return result;
      },
      workspace: {
        // Answer `workspace/configuration` for our section with exactly what we push.
        configuration: async (params, token, next) => {
          const answers = params.items.some((i) => i.section !== SECTION)
            ? await next({ items: params.items.filter((i) => i.section !== SECTION) }, token)
            : [];
          if (answers instanceof ResponseError) {
            return answers;
          }
          let other = 0;
          return params.items.map((item) =>
            item.section === SECTION ? serverSettings() : (answers as unknown[])[other++],
          );
        },
        // Changes are pushed by `pushSettings`; the default would send VS Code's defaults too.
        didChangeConfiguration: async () => undefined,
      },
    },
  };
}

/** Send the current settings to a running server (`workspace/didChangeConfiguration`). */
async function pushSettings(): Promise<void> {
  if (client?.state === State.Running) {
    await client.sendNotification(DidChangeConfigurationNotification.type, {
      settings: { [SECTION]: serverSettings() },
    });
  }
}

async function startClient(): Promise<void> {
  const options = serverOptions();
  const shown = commandLine(options);
  startedWith = shown;
  log.info(`starting ${shown}`);
  client = new LanguageClient(SECTION, "gpt-ls", options, clientOptions());
  client.onNotification("gpt-ls/status", (status: Status) => showStatus(status));
  client.onDidChangeState((e) => {
    if (e.newState === State.Stopped) {
      showStopped();
    } else if (e.newState === State.Running) {
      showStatus({ running: 0, tokens: 0, message: "gpt-ls is ready" });
    }
  });
  try {
    await client.start();
  } catch (err) {
    showStopped();
    const reason = err instanceof Error ? err.message : String(err);
    // Not awaited: activation must not wait for the user to dismiss the message.
    void vscode.window
      .showErrorMessage(
        `gpt-ls could not start (${shown}): ${reason}. Install gpt-ls from its repository (pipx install /path/to/gpt-ls) or set gpt-ls.serverPath / gpt-ls.pythonPath.`,
        "Open settings",
        "Show log",
      )
      .then((choice) => {
        if (choice === "Open settings") {
          void vscode.commands.executeCommand("workbench.action.openSettings", "gpt-ls.");
        } else if (choice === "Show log") {
          log.show(true);
        }
      });
  }
}

async function stopClient(): Promise<void> {
  const old = client;
  client = undefined;
  if (old) {
    try {
      await old.stop(5000);
    } catch (err) {
      log.warn(`stopping the server: ${err instanceof Error ? err.message : String(err)}`);
    }
    await old.dispose();
  }
}

let restarting: Promise<void> = Promise.resolve();

/** Stop and start the server; restarts asked for at once run one after the other. */
function restart(): Promise<void> {
  restarting = restarting.then(async () => {
    await stopClient();
    await startClient();
  });
  return restarting;
}

/** The command line `serverOptions` gives, to tell whether a settings change alters it. */
function commandLine(options: ServerOptions): string {
  return "command" in options ? `${options.command} ${(options.args ?? []).join(" ")}`.trim() : "";
}

/** The command line the running server was started with. */
let startedWith = "";

function showStatus(status: Status): void {
  if (status.running > 0) {
    statusItem.text = `$(sync~spin) GPT ${status.running > 1 ? `×${status.running} ` : ""}${status.tokens} tokens`;
    statusItem.tooltip = `${status.message || "gpt-ls is working"}\nClick to cancel.`;
    statusItem.command = "gpt-ls.vscode.cancel";
  } else {
    statusItem.text = "$(comment-discussion) GPT";
    statusItem.tooltip = `${status.message || "gpt-ls is ready"}\nClick to show the server log.`;
    statusItem.command = "gpt-ls.vscode.showLog";
  }
  statusItem.backgroundColor = undefined;
  statusItem.show();
}

function showStopped(): void {
  statusItem.text = "$(error) GPT";
  statusItem.tooltip = "gpt-ls is not running. Click to restart it.";
  statusItem.command = "gpt-ls.vscode.restart";
  statusItem.backgroundColor = new vscode.ThemeColor("statusBarItem.errorBackground");
  statusItem.show();
}

/** The user's own `gpt-ls.completions` (restricted: a workspace value never counts). */
function completionsOn(): boolean {
  return vscode.workspace.getConfiguration(SECTION).inspect<boolean>("completions")?.globalValue === true;
}

function showCompletions(): void {
  const on = completionsOn();
  completionsItem.text = on ? "$(sparkle) Completions" : "$(circle-slash) Completions";
  completionsItem.tooltip = on
    ? "gpt-ls suggests code as you type (each suggestion is a request that costs tokens).\nClick to turn completions off."
    : "gpt-ls completions as you type are off.\nClick to turn them on (each suggestion is a request that costs tokens).";
  completionsItem.show();
}

/** GPT: Toggle completions as you type — flip the user setting; the change reaches the server
 * through `pushSettings` (workspace/didChangeConfiguration), which registers or unregisters
 * inline completion. */
async function toggleCompletions(): Promise<void> {
  const on = !completionsOn();
  await vscode.workspace.getConfiguration(SECTION).update("completions", on, vscode.ConfigurationTarget.Global);
  showCompletions();
  vscode.window.setStatusBarMessage(`gpt-ls: completions as you type ${on ? "on" : "off"}`, 3000);
}

/** The arguments of a server command, from the active editor's selection. */
function commandArguments(action: Action, c: LanguageClient): unknown[] | undefined {
  if (action.args === "none") {
    return [];
  }
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    if (action.args === "uri") {
      return [];
    }
    void vscode.window.showWarningMessage("gpt-ls: open a file and select some text first.");
    return undefined;
  }
  const uri = c.code2ProtocolConverter.asUri(editor.document.uri);
  if (action.args === "uri") {
    return [uri];
  }
  // No selection: the line under the cursor is what the user means.
  const selection = editor.selection.isEmpty
    ? editor.document.lineAt(editor.selection.active.line).range
    : new vscode.Range(editor.selection.start, editor.selection.end);
  return [uri, c.code2ProtocolConverter.asRange(selection)];
}

/** A failed server command as one message in the server's own words (cancellation is silent). */
function reportFailure(err: unknown): void {
  if ((err instanceof ResponseError && err.code === REQUEST_CANCELLED) || err instanceof vscode.CancellationError) {
    return;
  }
  const text = err instanceof Error ? err.message : String(err);
  void vscode.window.showErrorMessage(`gpt-ls: ${redact(text)}`);
}

async function runAction(action: Action): Promise<void> {
  const c = client;
  if (!c || c.state !== State.Running) {
    const choice = await vscode.window.showErrorMessage("gpt-ls is not running.", "Restart", "Show log");
    if (choice === "Restart") {
      await restart();
    } else if (choice === "Show log") {
      log.show(true);
    }
    return;
  }
  const args = commandArguments(action, c);
  if (args === undefined) {
    return;
  }
  let result: unknown;
  try {
    result = await c.sendRequest(ExecuteCommandRequest.type, { command: action.server, arguments: args });
  } catch (err) {
    reportFailure(err);
    return;
  }
  const lines = (result as { lines?: unknown } | null)?.lines;
  if (action.server === "gpt-ls.check" && Array.isArray(lines)) {
    // The server's message can be longer than VS Code shows; the log keeps the whole report.
    log.info(`GPT: Check connection\n${lines.map(String).join("\n")}`);
  }
  await showHoverReply(action.server, result);
}

/** Show the reply of server `command` at the cursor when its output is a hover over the text.
 *
 * The server names each result's output: `"hover"` for Explain, Summarize and user actions
 * with `output = "hover"`. A server that names none shows Explain's as hover.
 */
async function showHoverReply(command: string, result: unknown): Promise<void> {
  const r = result as { output?: unknown; status?: unknown } | null | undefined;
  const editor = vscode.window.activeTextEditor;
  if (!r || typeof r !== "object" || !editor) {
    return;
  }
  const hover = r.output === undefined ? command === "gpt-ls.explain" : r.output === "hover";
  if (!hover || r.status === "error" || r.status === "cancelled") {
    return;
  }
  const sel = editor.selection;
  if (!sel.isEmpty) {
    editor.selection = new vscode.Selection(sel.start, sel.start);
  }
  await vscode.commands.executeCommand("editor.action.showHover");
}

/** Every action the server offers for the selection (built-in and user-defined), in a quick pick.
 *
 * The list comes from the server's code actions, so it matches the Refactor menu exactly.
 */
async function pickAction(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  const c = client;
  if (!editor || !c || c.state !== State.Running) {
    void vscode.window.showWarningMessage("gpt-ls: open a file (with gpt-ls running) and select some text first.");
    return;
  }
  const range = editor.selection.isEmpty
    ? editor.document.lineAt(editor.selection.active.line).range
    : new vscode.Range(editor.selection.start, editor.selection.end);
  const serverCommands = new Set(c.initializeResult?.capabilities.executeCommandProvider?.commands ?? []);
  const found =
    (await vscode.commands.executeCommand<(vscode.CodeAction | vscode.Command)[]>(
      "vscode.executeCodeActionProvider",
      editor.document.uri,
      range,
    )) ?? [];
  const commands = found
    .map((a) => (typeof a.command === "string" ? (a as vscode.Command) : (a as vscode.CodeAction).command))
    .filter((cmd): cmd is vscode.Command => !!cmd && serverCommands.has(cmd.command));
  if (commands.length === 0) {
    void vscode.window.showWarningMessage("gpt-ls offers no action here.");
    return;
  }
  const picked = await vscode.window.showQuickPick(
    commands.map((cmd) => ({ label: cmd.title, cmd })),
    { title: "GPT: Run action", placeHolder: "Pick an action for the selection" },
  );
  if (picked) {
    // The client registered the server's commands: running one goes through `executeCommand`.
    await vscode.commands.executeCommand(picked.cmd.command, ...(picked.cmd.arguments ?? []));
  }
}

async function setApiKey(context: vscode.ExtensionContext): Promise<void> {
  const value = await vscode.window.showInputBox({
    title: "GPT: Set API key",
    prompt: "The key is kept in VS Code's secret storage and given to gpt-ls only. Leave empty to remove it.",
    placeHolder: "sk-…",
    password: true,
    ignoreFocusOut: true,
  });
  if (value === undefined) {
    return;
  }
  const key = value.trim();
  if (key) {
    await context.secrets.store(SECRET_KEY, key);
  } else {
    await context.secrets.delete(SECRET_KEY);
  }
  apiKey = key || undefined;
  await pushSettings();
  void vscode.window.showInformationMessage(key ? "gpt-ls: API key stored." : "gpt-ls: API key removed.");
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  log = redacting(vscode.window.createOutputChannel("gpt-ls", { log: true }));
  statusItem = vscode.window.createStatusBarItem("gpt-ls.status", vscode.StatusBarAlignment.Right, 100);
  statusItem.name = "gpt-ls";
  completionsItem = vscode.window.createStatusBarItem("gpt-ls.completions", vscode.StatusBarAlignment.Right, 99);
  completionsItem.name = "gpt-ls completions";
  completionsItem.command = "gpt-ls.vscode.toggleCompletions";
  showCompletions();
  context.subscriptions.push(log, statusItem, completionsItem);

  apiKey = (await context.secrets.get(SECRET_KEY)) || undefined;

  for (const action of ACTIONS) {
    context.subscriptions.push(vscode.commands.registerCommand(action.id, () => runAction(action)));
  }
  context.subscriptions.push(
    vscode.commands.registerCommand("gpt-ls.vscode.setApiKey", () => setApiKey(context)),
    vscode.commands.registerCommand("gpt-ls.vscode.runAction", () => pickAction()),
    vscode.commands.registerCommand("gpt-ls.vscode.restart", () => restart()),
    vscode.commands.registerCommand("gpt-ls.vscode.showLog", () => log.show(true)),
    vscode.commands.registerCommand("gpt-ls.vscode.toggleCompletions", () => toggleCompletions()),
    context.secrets.onDidChange(async (e) => {
      if (e.key === SECRET_KEY) {
        // Another window may have changed the key; this window's own change is already pushed.
        const stored = (await context.secrets.get(SECRET_KEY)) || undefined;
        if (stored !== apiKey) {
          apiKey = stored;
          await pushSettings();
        }
      }
    }),
    // The server learns of trust at initialize: start it again with the key and trust.
    vscode.workspace.onDidGrantWorkspaceTrust(async () => {
      log.info("the workspace is trusted now: restarting the server");
      await restart();
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      const program = e.affectsConfiguration(`${SECTION}.serverPath`) || e.affectsConfiguration(`${SECTION}.pythonPath`);
      // Granting trust reports these as changed although only the user's values count.
      if (program && commandLine(serverOptions()) !== startedWith) {
        await restart();
      } else if (e.affectsConfiguration(SECTION)) {
        if (e.affectsConfiguration(`${SECTION}.completions`)) {
          showCompletions();
        }
        await pushSettings();
      }
    }),
  );
  await startClient();
  if (!vscode.workspace.isTrusted) {
    tellRestricted();
  }
}

/** Say once why a stored key is not used in Restricted Mode, and where to trust. */
function tellRestricted(): void {
  log.info("Restricted Mode: the workspace is untrusted; the stored API key is not sent and the server ignores the workspace's restricted settings");
  if (!apiKey) {
    return;
  }
  void vscode.window
    .showWarningMessage(
      "gpt-ls: this workspace is in Restricted Mode, so the API key stored with GPT: Set API key is not used here. Trust the workspace to use it.",
      "Manage Workspace Trust",
    )
    .then((choice) => {
      if (choice) {
        void vscode.commands.executeCommand("workbench.trust.manage");
      }
    });
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
