// Reference sync server for the benchmark: automerge-repo 2.5 set up as automerge-repo-sync-server sets it up.
import fs from "node:fs"
import os from "node:os"
import { parseArgs } from "node:util"
import express from "express"
import { WebSocketServer } from "ws"
import { Repo } from "@automerge/automerge-repo"
import { NodeWSServerAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"

const { values: args } = parseArgs({
  options: { port: { type: "string", default: "3030" }, data: { type: "string", default: ".amrg" } },
})
fs.mkdirSync(args.data, { recursive: true })

const wss = new WebSocketServer({ noServer: true })
new Repo({
  network: [new NodeWSServerAdapter(wss)],
  storage: new NodeFSStorageAdapter(args.data),
  peerId: `storage-server-${os.hostname()}`,
  // A server does not announce documents: peers get only what they ask for by id.
  sharePolicy: async () => false,
})

const app = express()
app.get("/", (req, res) => res.send("automerge-repo reference sync server is running"))

// Loopback only: the benchmark's clients run on this machine.
const server = app.listen(Number(args.port), "127.0.0.1", (err) => {
  if (err) throw err
  console.log(`listening ${server.address().port}`)
})
server.on("upgrade", (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request))
})
process.on("SIGTERM", () => {
  wss.close()
  server.close()
  process.exit(0)
})
