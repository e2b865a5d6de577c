// The demo's MCP agent: the official MCP SDK client (@modelcontextprotocol/sdk,
// as tests/npm pins it) starts toolgate-mcp as an ordinary stdio server, the
// way an agent framework or an IDE would (examples/mcp-client.json), and
// talks to the gate through it.
//
//   TG_NPM_DIR=.cache/npm node examples/mcp-agent.mjs build/toolgate-mcp AGENT_SOCKET
//
// What it shows: the tools the gate lets this uid call, under names that
// model APIs accept and with the gate's own annotations; a read; a write;
// a write
// held for an operator's approval, then answered as a tool result the
// model can read; a tool the gate does not list.
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [bridge, socket] = process.argv.slice(2);
const npmDir = process.env.TG_NPM_DIR;
if (!bridge || !socket || !npmDir) {
	process.stderr.write("usage: TG_NPM_DIR=DIR node mcp-agent.mjs TOOLGATE_MCP AGENT_SOCKET\n");
	process.exit(2);
}
// The SDK from the pinned install, by file: this script lives outside it.
const sdk = join(npmDir, "node_modules", "@modelcontextprotocol", "sdk", "dist", "esm");
const load = (rel) => import(pathToFileURL(join(sdk, rel)).href);
const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");

const text = (r) => (r.content || []).filter((c) => c.type === "text")
	.map((c) => c.text).join(" ");
const short = (s) => {
	s = s.replace(/\s+/g, " ");
	return s.length > 150 ? s.slice(0, 147) + "..." : s;
};

const client = new Client({ name: "toolgate-demo-agent", version: "1.0.0" });
await client.connect(new StdioClientTransport({
	command: bridge,
	args: ["-s", socket, "--run-id", "mcp-demo", "--approval-wait-ms", "1500"],
	stderr: "ignore",
}));
console.log(`connected to ${client.getServerVersion().name}, protocol negotiated by the SDK`);

const { tools } = await client.listTools();
console.log("tools/list: what the gate lets this uid call");
for (const t of tools) {
	const a = t.annotations || {};
	const hints = ["readOnlyHint", "destructiveHint", "idempotentHint"]
		.filter((h) => a[h]).join(", ");
	console.log(`  ${t.name.padEnd(16)} (gate name ${t.title}): ${hints}`);
}

let r = await client.callTool({ name: "kb_read", arguments: { q: "password" } });
console.log(`tools/call kb_read {q: password}: ${short(text(r))}`);

r = await client.callTool({ name: "memory_remember", arguments: {
	entities: [{ name: "T-2001", entityType: "ticket", observations: ["from MCP"] }] } });
console.log(`tools/call memory_remember: isError ${r.isError === true}: ${short(text(r))}`);

// ticket.close needs an operator's approval: the bridge holds the call
// (--approval-wait-ms, 1.5 s here), then says so; nobody approves here.
r = await client.callTool({ name: "ticket_close", arguments: { ticket_id: "T-3003" } });
console.log(`tools/call ticket_close: isError ${r.isError === true}: ${short(text(r))}`);

try {
	await client.callTool({ name: "email_send", arguments: { to: "all@example.com" } });
	console.log("tools/call email_send: answered (it should not be)");
} catch (e) {
	console.log(`tools/call email_send: JSON-RPC error ${e.code}: not a tool this uid may call`);
}
await client.close();
