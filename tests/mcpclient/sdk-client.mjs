// The official MCP TypeScript SDK's client (@modelcontextprotocol/sdk, as
// tests/npm pins it) driving an MCP stdio server, for the regress tests of
// toolgate-mcp (tests/regress/test_bridge_sdk.py).  Whatever the client
// sees goes to stdout as one JSON object a line, so a test can check it
// and act while a call is still waiting (approve it, cancel it).
//
//   node sdk-client.mjs SCENARIO SERVER [ARG...]
//
// SERVER [ARG...] is the stdio server the SDK's StdioClientTransport
// starts (toolgate-mcp -s SOCKET ...), with this process's environment.
// TG_NPM_DIR is where tests/npm/install put the packages.
//
// Scenarios:
//   list     initialize, tools/list, print both, close.
//   session  initialize, print it, then run the commands read on stdin,
//            one JSON object a line, each printing what came of it:
//     {"op": "list"}                      -> {"event": "tools", "tools": [...]}
//     {"op": "ping"}                      -> {"event": "pong"}
//     {"op": "call", "tag": T, "name": N, "args": {...},
//      "progress": true, "timeout_ms": MS}
//         runs in the background (calls overlap); prints
//         {"event": "progress", "tag": T, "progress": P, "total": X, "message": M}
//         for each progress notification (only with "progress": true, which
//         makes the SDK send a progressToken), then one of
//         {"event": "result", "tag": T, "result": CallToolResult}
//         {"event": "error", "tag": T, "code": C, "message": M, "name": E}
//     {"op": "cancel", "tag": T}          aborts that call (AbortSignal: the
//                                         SDK sends notifications/cancelled)
//     {"op": "close"}                     -> {"event": "closed"}, exit 0
//   Every command answered, stdin's end closes the client too.
//
// Exit status: 0 done, 1 the client failed outside a call (printed as
// {"event": "fatal", ...}), 2 usage.
import { createInterface } from "node:readline";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const npmDir = process.env.TG_NPM_DIR;
const [scenario, command, ...commandArgs] = process.argv.slice(2);
if (!npmDir || !scenario || !command || !["list", "session"].includes(scenario)) {
	process.stderr.write("usage: TG_NPM_DIR=DIR node sdk-client.mjs list|session SERVER [ARG...]\n");
	process.exit(2);
}

// The SDK from the pinned install, by file: this script lives outside
// that node_modules, where ESM's resolution would not look.
const sdk = join(npmDir, "node_modules", "@modelcontextprotocol", "sdk", "dist", "esm");
const load = (rel) => import(pathToFileURL(join(sdk, rel)).href);
const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");
const { McpError } = await load("types.js");

function emit(obj) {
	process.stdout.write(JSON.stringify(obj) + "\n");
}

function errorEvent(tag, e) {
	return {
		event: "error", tag,
		code: e instanceof McpError ? e.code : null,
		message: e instanceof Error ? e.message : String(e),
		name: e && e.name,
		data: e instanceof McpError ? e.data : undefined,
	};
}

// The server's stderr is this process's: the test keeps it for its report.
const transport = new StdioClientTransport({
	command, args: commandArgs, env: { ...process.env }, stderr: "inherit",
});
// The SDK tells a transport the negotiated version (the HTTP transport
// needs it for a header); stdio's has no use for it, so note it here.
let negotiated = null;
transport.setProtocolVersion = (v) => { negotiated = v; };

const client = new Client({ name: "toolgate-sdk-test", version: "1.0.0" },
    { capabilities: {} });

async function connect() {
	await client.connect(transport);
	emit({
		event: "initialized",
		protocolVersion: negotiated,
		serverInfo: client.getServerVersion(),
		capabilities: client.getServerCapabilities(),
		instructions: client.getInstructions() ?? null,
	});
}

async function listAll() {
	const tools = [];
	let cursor;
	do {
		const page = await client.listTools(cursor ? { cursor } : {});
		tools.push(...page.tools);
		cursor = page.nextCursor;
	} while (cursor);
	return tools;
}

const calls = new Map();        // tag -> AbortController of a call in flight

function startCall(cmd) {
	const tag = cmd.tag;
	const ac = new AbortController();
	calls.set(tag, ac);
	const options = { signal: ac.signal };
	if (cmd.timeout_ms)
		options.timeout = cmd.timeout_ms;
	if (cmd.progress) {
		options.onprogress = (p) => emit({ event: "progress", tag, ...p });
		options.resetTimeoutOnProgress = true;
	}
	const t0 = Date.now();
	return client.callTool({ name: cmd.name, arguments: cmd.args ?? {} }, undefined, options)
	    .then((result) => emit({ event: "result", tag, ms: Date.now() - t0, result }),
		(e) => emit({ ...errorEvent(tag, e), ms: Date.now() - t0 }))
	    .finally(() => calls.delete(tag));
}

async function session() {
	const pending = [];
	const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
	for await (const line of rl) {
		if (!line.trim())
			continue;
		const cmd = JSON.parse(line);
		switch (cmd.op) {
		case "list":
			try {
				emit({ event: "tools", tools: await listAll() });
			} catch (e) {
				emit(errorEvent(cmd.tag, e));
			}
			break;
		case "ping":
			try {
				await client.ping();
				emit({ event: "pong" });
			} catch (e) {
				emit(errorEvent(cmd.tag, e));
			}
			break;
		case "call":
			pending.push(startCall(cmd));
			break;
		case "cancel": {
			const ac = calls.get(cmd.tag);
			if (ac)
				ac.abort("cancelled by the test");
			emit({ event: "cancelled", tag: cmd.tag, was_running: !!ac });
			break;
		}
		case "close":
			rl.close();
			break;
		default:
			emit({ event: "bad_command", command: cmd });
		}
	}
	await Promise.allSettled(pending);
}

try {
	await connect();
	if (scenario === "list")
		emit({ event: "tools", tools: await listAll() });
	else
		await session();
	await client.close();
	emit({ event: "closed" });
	process.exit(0);
} catch (e) {
	emit({ event: "fatal", message: String(e && e.message), code: (e && e.code) ?? null });
	process.exit(1);
}
