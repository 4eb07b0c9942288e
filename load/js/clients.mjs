// JavaScript Yjs clients for the collaboration benchmarks (load/js_clients.py drives them):
// the same edits as load/collab_client.py's Python clients (a few letters typed near the head of
// `lyrics` and a `bench` map entry keyed "room.client:seq", in one transaction), made by yjs and
// spoken in y-protocols' sync messages over a ws WebSocket, as a browser's y-websocket client
// would. All clients of a run live in this one process.
//
// Commands come one JSON object a line on stdin; what happens goes out one JSON object a line on
// stdout, timed by the monotonic clock the Python harness reads too (process.hrtime.bigint() and
// time.perf_counter_ns() are both CLOCK_MONOTONIC on Linux):
//   {"cmd":"connect","clients":[i...]}  -> {"connected":[i...]} once each has its sync step 2
//   {"cmd":"run","rate":r,"start_ns":a,"measure_from_ns":b,"stop_ns":c}
//        -> {"e":[client,seq,sent_ns,measured]} per edit sent,
//           {"r":[client,key,now_ns]} per update frame received that spells an edit's key,
//           {"ran":{"sent":[n...]}} at the end
//   {"cmd":"contents"}  -> {"contents":{"contents":[{"bench":{...},"lyrics":"..."}...],
//                                        "codes":{client:[code,reason]}}} (those the server closed)
//   {"cmd":"join","urls":[url...]} -> {"joined":[seconds...]}: a fresh client per URL, all
//        connected at the same moment, each one's seconds from the start of its connection to its
//        sync step 2; then they are closed
//   {"cmd":"close"}     -> {"closed":true}, then exits
// The clients are given at start as JSON in argv[2]: [{"url":..., "room":r, "index":i}, ...].

import * as readline from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

const MESSAGE_SYNC = 0
const HEAD = 32 // edits land within this many characters of the head (collab_client.HEAD)
const LETTERS = 'abcdefghijklmnopqrstuvwxyz'
const KEY = /\d+\.\d+:\d+/g

const now = () => process.hrtime.bigint()
const out = (value) => process.stdout.write(JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? Number(v) : v)) + '\n')

// A small seeded generator, so that a run's edits do not depend on Math.random's state.
function random (seed) {
  let state = seed >>> 0 || 1
  return () => {
    state ^= state << 13; state >>>= 0
    state ^= state >>> 17
    state ^= state << 5; state >>>= 0
    return state / 4294967296
  }
}

class Client {
  constructor (n, { url, room, index }) {
    this.n = n
    this.url = url
    this.name = `${room}.${index}`
    this.doc = new Y.Doc()
    this.bench = this.doc.getMap('bench')
    this.lyrics = this.doc.getText('lyrics')
    this.random = random(room * 100003 + index + 1)
    this.seq = 0
    this.sent = 0
    this.close = null
    this.doc.on('update', (update, origin) => {
      if (origin !== 'remote' && this.ws !== undefined) {
        const encoder = encoding.createEncoder()
        encoding.writeVarUint(encoder, MESSAGE_SYNC)
        syncProtocol.writeUpdate(encoder, update)
        this.ws.send(encoding.toUint8Array(encoder))
      }
    })
  }

  connect () {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { perMessageDeflate: false })
      ws.binaryType = 'nodebuffer'
      this.ws = ws
      let synced = false
      ws.on('open', () => {
        const encoder = encoding.createEncoder()
        encoding.writeVarUint(encoder, MESSAGE_SYNC)
        syncProtocol.writeSyncStep1(encoder, this.doc)
        ws.send(encoding.toUint8Array(encoder))
      })
      ws.on('message', (data) => {
        const type = this.receive(data)
        if (!synced && type === syncProtocol.messageYjsSyncStep2) {
          synced = true
          resolve()
        }
      })
      ws.on('close', (code, reason) => {
        if (this.close === null) this.close = [code, reason.toString()]
        if (!synced) reject(new Error(`client ${this.name} closed before it synced: ${code}`))
      })
      ws.on('error', (err) => { if (!synced) reject(err) })
    })
  }

  receive (data) {
    const at = now()
    const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) return null // awareness, auth: not ours
    const type = decoding.peekVarUint(decoder)
    if (type === syncProtocol.messageYjsUpdate && this.n !== null) {
      for (const key of data.toString('latin1').match(KEY) || []) out({ r: [this.n, key, at] })
    }
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MESSAGE_SYNC)
    syncProtocol.readSyncMessage(decoder, encoder, this.doc, 'remote')
    if (encoding.length(encoder) > 1) this.ws.send(encoding.toUint8Array(encoder)) // step 2
    return type
  }

  edit (measured) {
    this.seq += 1
    const key = `${this.name}:${this.seq}`
    const at = Math.floor(this.random() * (Math.min(this.lyrics.length, HEAD) + 1))
    let chars = ''
    for (let i = 1 + Math.floor(this.random() * 4); i > 0; i--) chars += LETTERS[Math.floor(this.random() * 26)]
    const sent = now()
    out({ e: [this.n, this.seq, sent, measured] })
    this.doc.transact(() => {
      this.lyrics.insert(at, chars)
      this.bench.set(key, 0)
    })
    this.sent += 1
  }

  async run (rate, start, measureFrom, stop) {
    const interval = BigInt(Math.round(1e9 / rate))
    let due = start + BigInt(Math.floor(this.random() * Number(interval)))
    while (due < stop && this.close === null) {
      const delay = Number(due - now()) / 1e6
      if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
      this.edit(due >= measureFrom)
      due += interval
    }
  }
}

// Closes `list`'s clients; resolves once each is closed.
function closeAll (list) {
  return Promise.all(list.map((c) => new Promise((resolve) => {
    if (c.ws === undefined || c.ws.readyState === WebSocket.CLOSED) return resolve()
    c.close = c.close ?? [1000, '']
    c.ws.on('close', resolve)
    c.ws.close()
  })))
}

// Fresh clients opening `urls` at the same moment (not reporting what they receive): each one's
// seconds to synced.
async function join (urls) {
  const joiners = urls.map((url, i) => new Client(null, { url, room: 0, index: i }))
  try {
    return await Promise.all(joiners.map(async (c) => {
      const started = now()
      await c.connect()
      return Number(now() - started) / 1e9
    }))
  } finally {
    await closeAll(joiners)
  }
}

const clients = JSON.parse(process.argv[2]).map((spec, n) => new Client(n, spec))
const lines = readline.createInterface({ input: process.stdin })
for await (const line of lines) {
  const command = JSON.parse(line)
  if (command.cmd === 'connect') {
    await Promise.all(command.clients.map((n) => clients[n].connect()))
    out({ connected: command.clients })
  } else if (command.cmd === 'run') {
    const times = ['start_ns', 'measure_from_ns', 'stop_ns'].map((k) => BigInt(command[k]))
    await Promise.all(clients.map((c) => c.run(command.rate, ...times)))
    out({ ran: { sent: clients.map((c) => c.sent), seq: clients.map((c) => c.seq) } })
  } else if (command.cmd === 'contents') {
    const codes = {} // the clients the server closed
    clients.forEach((c) => { if (c.close !== null) codes[c.n] = c.close })
    const contents = clients.map((c) => ({ bench: c.bench.toJSON(), lyrics: c.lyrics.toString() }))
    out({ contents: { contents, codes } })
  } else if (command.cmd === 'join') {
    out({ joined: await join(command.urls) })
  } else if (command.cmd === 'close') {
    await closeAll(clients)
    out({ closed: true })
    process.exit(0)
  }
}
