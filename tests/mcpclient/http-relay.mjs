// A stdio MCP server behind Streamable HTTP, for clients that reach
// servers only by URL (the MCP conformance suite's server scenarios).
// Each HTTP session (an initialize without a session id) starts its own
// SERVER process; JSON-RPC messages go through unchanged both ways, by the
// official SDK's transports: StreamableHTTPServerTransport towards the
// HTTP client, StdioClientTransport towards the server.  Nothing here
// answers anything itself, so what the client sees is the server's.
//
//   TG_NPM_DIR=DIR node http-relay.mjs SERVER [ARG...]
//
// Listens on 127.0.0.1, a port the kernel picks, and prints
// {"url": "http://127.0.0.1:PORT/mcp"} once it does.  Ends on SIGTERM or
// at its stdin's end, ending the servers it started.
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const npmDir = process.env.TG_NPM_DIR;
const [command, ...commandArgs] = process.argv.slice(2);
if (!npmDir || !command) {
	process.stderr.write("usage: TG_NPM_DIR=DIR node http-relay.mjs SERVER [ARG...]\n");
	process.exit(2);
}
const sdk = join(npmDir, "node_modules", "@modelcontextprotocol", "sdk", "dist", "esm");
const load = (rel) => import(pathToFileURL(join(sdk, rel)).href);
const { StreamableHTTPServerTransport } = await load("server/streamableHttp.js");
const { StdioClientTransport } = await load("client/stdio.js");

const sessions = new Map();     // session id -> { down, up }

function isInitialize(body) {
	const msgs = Array.isArray(body) ? body : [body];
	return msgs.some((m) => m && typeof m === "object" && m.method === "initialize");
}

// One server process and the HTTP side of its session.
async function open() {
	const up = new StdioClientTransport({
		command, args: commandArgs, env: { ...process.env }, stderr: "inherit",
	});
	const down = new StreamableHTTPServerTransport({
		sessionIdGenerator: () => randomUUID(),
		onsessioninitialized: (id) => sessions.set(id, { down, up }),
	});
	// Progress notifications name a progressToken, not a request: note
	// which request gave each token, so that its notifications go on that
	// request's stream.
	const tokens = new Map();
	down.onmessage = (msg) => {
		const token = msg.params?._meta?.progressToken;
		if (msg.id !== undefined && token !== undefined)
			tokens.set(token, msg.id);
		up.send(msg).catch((e) => process.stderr.write(`relay: to server: ${e}\n`));
	};
	up.onmessage = (msg) => {
		let related;
		if (msg.method === "notifications/progress")
			related = tokens.get(msg.params?.progressToken);
		if (msg.id !== undefined && ("result" in msg || "error" in msg))
			for (const [t, id] of tokens)
				if (id === msg.id)
					tokens.delete(t);
		down.send(msg, related !== undefined ? { relatedRequestId: related } : undefined)
		    .catch((e) => process.stderr.write(`relay: to client: ${e}\n`));
	};
	const shut = () => {
		if (down.sessionId)
			sessions.delete(down.sessionId);
		up.close().catch(() => {});
		down.close().catch(() => {});
	};
	up.onclose = shut;
	down.onclose = shut;
	await up.start();
	await down.start();
	return down;
}

function readBody(req) {
	return new Promise((resolve, reject) => {
		const chunks = [];
		req.on("data", (c) => chunks.push(c));
		req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
		req.on("error", reject);
	});
}

function fail(res, status, message) {
	res.writeHead(status, { "Content-Type": "application/json" });
	res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

const http = createServer(async (req, res) => {
	try {
		if (new URL(req.url, "http://x").pathname !== "/mcp")
			return fail(res, 404, "not found");
		let body;
		if (req.method === "POST") {
			const text = await readBody(req);
			try {
				body = JSON.parse(text);
			} catch {
				res.writeHead(400, { "Content-Type": "application/json" });
				return res.end(JSON.stringify({ jsonrpc: "2.0",
				    error: { code: -32700, message: "Parse error" }, id: null }));
			}
		}
		const id = req.headers["mcp-session-id"];
		if (id !== undefined) {
			const s = sessions.get(id);
			if (!s)
				return fail(res, 404, "no such session");
			return await s.down.handleRequest(req, res, body);
		}
		if (req.method === "POST" && isInitialize(body))
			return await (await open()).handleRequest(req, res, body);
		return fail(res, 400, "no session id");
	} catch (e) {
		process.stderr.write(`relay: ${e && e.stack}\n`);
		if (!res.headersSent)
			fail(res, 500, "relay error");
	}
});

function quit() {
	for (const { up } of sessions.values())
		up.close().catch(() => {});
	http.close();
	process.exit(0);
}
process.on("SIGTERM", quit);
process.stdin.on("end", quit);
process.stdin.resume();

http.listen(0, "127.0.0.1", () => {
	const { port } = http.address();
	process.stdout.write(JSON.stringify({ url: `http://127.0.0.1:${port}/mcp` }) + "\n");
});
