// Load generator for the reference server: starts server.mjs as a child, runs one scenario, prints one JSON line.
import fs from "node:fs"
import os from "node:os"
import path from "node:path"
import { spawn } from "node:child_process"
import { parseArgs } from "node:util"
import { setTimeout as sleep, setImmediate as yieldToLoop } from "node:timers/promises"
import { fileURLToPath } from "node:url"
import * as Automerge from "@automerge/automerge"
import { Repo } from "@automerge/automerge-repo"
import { BrowserWebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"

const { values: opt } = parseArgs({
  options: {
    scenario: { type: "string", default: "couples" },
    devices: { type: "string", default: "10" },
    edits: { type: "string", default: "200" },
    rate: { type: "string", default: "0" }, // edits per second per device; 0 = as fast as possible
    timeout: { type: "string", default: "300" }, // seconds for the whole run
  },
})
const scenario = opt.scenario
const N = Number(opt.devices)
const E = scenario === "couples" ? Number(opt.edits) : 0
const RATE = Number(opt.rate)
const TIMEOUT_MS = Number(opt.timeout) * 1000
const deadline = Date.now() + TIMEOUT_MS
if (!["couples", "idle"].includes(scenario) || !(N >= 2) || N % 2) {
  console.error("usage: loadgen.mjs --scenario couples|idle --devices N(even) [--edits E] [--rate R] [--timeout S]")
  process.exit(2)
}

// ---- the server child and what /proc says about it ----
const CLOCK_TICK_MS = 10 // USER_HZ is 100 on Linux
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "kintsugi-bench-ref-"))
const serverPath = path.join(path.dirname(fileURLToPath(import.meta.url)), "server.mjs")
const server = spawn(process.execPath, [serverPath, "--port", "0", "--data", dataDir], {
  stdio: ["ignore", "pipe", "inherit"],
})
const serverCpuMs = () => {
  const stat = fs.readFileSync(`/proc/${server.pid}/stat`, "utf8")
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ") // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) * CLOCK_TICK_MS // utime + stime
}
const serverStatusKib = (key) => {
  const m = fs.readFileSync(`/proc/${server.pid}/status`, "utf8").match(new RegExp(`^${key}:\\s+(\\d+)`, "m"))
  return Number(m[1])
}

const repos = []
let cleanedUp = false
async function cleanup() {
  if (cleanedUp) return
  cleanedUp = true
  await Promise.race([Promise.allSettled(repos.map(async (r) => r.shutdown())), sleep(5000)])
  if (server.exitCode === null) {
    server.kill("SIGTERM")
    await Promise.race([new Promise((r) => server.once("exit", r)), sleep(3000)])
    server.kill("SIGKILL")
  }
  fs.rmSync(dataDir, { recursive: true, force: true })
}
// Whatever happens, the server child and its data go with us.
process.on("exit", () => {
  server.kill("SIGKILL")
  fs.rmSync(dataDir, { recursive: true, force: true })
})
// A hard stop in case something hangs past the timeout.
setTimeout(async () => {
  console.error(`loadgen: hard timeout after ${TIMEOUT_MS / 1000 + 30} s`)
  await Promise.race([cleanup(), sleep(5000)])
  process.exit(1)
}, TIMEOUT_MS + 30000).unref()

const port = await new Promise((resolve, reject) => {
  let buf = ""
  server.stdout.on("data", (chunk) => {
    buf += chunk
    const m = buf.match(/listening (\d+)/)
    if (m) resolve(Number(m[1]))
  })
  server.once("exit", (code) => reject(new Error(`server exited with ${code} before listening`)))
})
const url = `ws://127.0.0.1:${port}`

// ---- devices: each its own Repo and its own websocket ----
async function connectDevice(id) {
  const adapter = new BrowserWebSocketClientAdapter(url)
  const repo = new Repo({ network: [adapter], peerId: id })
  repos.push(repo)
  await new Promise((resolve) => repo.networkSubsystem.once("peer", resolve))
  return { id, repo, adapter }
}
async function connectAll(ids, batch = 50) {
  const out = []
  for (let i = 0; i < ids.length; i += batch) out.push(...(await Promise.all(ids.slice(i, i + batch).map(connectDevice))))
  return out
}
const sameHeads = (a, b) => a && b && a.length === b.length && a.every((h) => b.includes(h))
// Resolves once the server has acknowledged (in its sync state) every change of the handle.
async function untilServerHas({ repo, adapter }, handle) {
  for (;;) {
    const storageId = repo.peerMetadataByPeerId[adapter.remotePeerId]?.storageId
    if (storageId && sameHeads(handle.getSyncInfo(storageId)?.lastHeads, handle.heads())) return
    if (Date.now() > deadline) throw new Error("timed out waiting for the server to store a new document")
    await sleep(20)
  }
}
// The first device of a pair creates the document; the second finds it through the server.
async function setUpPair(creator, finder) {
  const a = creator.repo.create({ text: "", marks: {} })
  await untilServerHas(creator, a)
  const b = await finder.repo.find(a.url)
  return [a, b]
}

const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]
const round = (x, digits = 3) => (x == null || !Number.isFinite(x) ? null : Number(x.toFixed(digits)))

async function couples() {
  const devices = await connectAll(Array.from({ length: N }, (_, i) => `device-${i}`))
  const handles = new Array(N)
  for (let p = 0; p < N; p += 2) [handles[p], handles[p + 1]] = await setUpPair(devices[p], devices[p + 1])

  // sentAt[d][c] = time just before device d's edit number c (1-based); latencies of partner arrivals.
  const sentAt = devices.map(() => new Float64Array(E + 1))
  const latencies = []
  let lastArrival = 0
  let allSeen
  const allSeenP = new Promise((r) => (allSeen = r))
  devices.forEach((dev, d) => {
    const partner = d ^ 1
    const partnerId = devices[partner].id
    let seen = 0
    handles[d].on("change", ({ doc }) => {
      const now = performance.now()
      const mark = doc.marks?.[partnerId] ?? 0
      if (mark <= seen) return // our own edit, or nothing new from the partner
      for (; seen < mark; seen++) latencies.push(now - sentAt[partner][seen + 1])
      lastArrival = now
      if (latencies.length === N * E) allSeen()
    })
  })

  async function edits(d) {
    const handle = handles[d]
    const id = devices[d].id
    const period = RATE > 0 ? 1000 / RATE : 0
    const start = performance.now() + (period * d) / N // spread devices over one period
    for (let c = 1; c <= E; c++) {
      if (period) await sleep(Math.max(0, start + (c - 1) * period - performance.now()))
      sentAt[d][c] = performance.now()
      handle.change((doc) => {
        Automerge.splice(doc, ["text"], doc.text.length, 0, `${d}:${c} `)
        doc.marks[id] = c
      })
      if (!period) await yieldToLoop()
    }
  }

  const cpu0 = process.cpuUsage()
  const server0 = serverCpuMs()
  const t0 = performance.now()
  await Promise.all(devices.map((_, d) => edits(d)))
  const timedOut = await Promise.race([allSeenP.then(() => false), sleep(Math.max(0, deadline - Date.now())).then(() => true)])
  const serverMs = serverCpuMs() - server0
  const cpu = process.cpuUsage(cpu0)
  const unseen = N * E - latencies.length
  const total = N * E
  latencies.sort((x, y) => x - y)
  return {
    edits_per_sec: round(latencies.length / ((lastArrival - t0) / 1000), 1),
    latency_ms: latencies.length
      ? { p50: round(quantile(latencies, 0.5)), p99: round(quantile(latencies, 0.99)), max: round(latencies.at(-1)) }
      : null,
    server_cpu_ms_per_change: round(serverMs / total, 4),
    client_cpu_ms_per_change: round((cpu.user + cpu.system) / 1000 / total, 4),
    server_rss_kib_per_idle_device: null,
    timed_out: timedOut,
    unseen_edits: unseen,
  }
}

async function idle() {
  // One document per couple, put on the server by a seeding device that then leaves.
  const seed = await connectDevice("seed")
  const docs = Array.from({ length: N / 2 }, () => seed.repo.create({ text: "", marks: {} }))
  for (const h of docs) await untilServerHas(seed, h)
  await seed.repo.shutdown()
  repos.splice(repos.indexOf(seed.repo), 1)
  await sleep(2000)
  const before = serverStatusKib("VmRSS")
  const devices = await connectAll(Array.from({ length: N }, (_, i) => `device-${i}`))
  await Promise.all(devices.map((dev, i) => dev.repo.find(docs[i >> 1].url)))
  await sleep(2000)
  const after = serverStatusKib("VmRSS")
  return {
    edits_per_sec: null,
    latency_ms: null,
    server_cpu_ms_per_change: null,
    client_cpu_ms_per_change: null,
    server_rss_kib_per_idle_device: round((after - before) / N, 1),
    server_rss_kib_before: before,
    server_rss_kib_after: after,
  }
}

const started = Date.now()
let code = 0
try {
  const result = await (scenario === "couples" ? couples() : idle())
  const out = {
    system: "reference",
    scenario,
    devices: N,
    edits_per_device: E,
    rate_per_device: RATE,
    ...result,
    server_peak_rss_kib: serverStatusKib("VmHWM"),
    durable_acks: false,
    wall_s: round((Date.now() - started) / 1000, 1),
  }
  console.log(JSON.stringify(out))
  if (out.timed_out) code = 1
} catch (err) {
  console.error(`loadgen: ${err?.stack ?? err}`)
  code = 1
}
await cleanup()
process.exit(code)
