// A Yjs client of one JACAMENO project, driven by a test over stdin/stdout: y-websocket's
// WebsocketProvider on /collab/{project} (the default), or @hocuspocus/provider on /hocuspocus
// (4.x, or the 2.x and 3.x generations still in the field: dialect hocuspocus-v2 / -v3).
//
// Requests are JSON lines `{"id": n, "cmd": "...", ...}`; each gets one answer line
// `{"id": n, "ok": true, ...}` or `{"id": n, "ok": false, "error": "..."}`. Lines without an id
// are events: `{"event": "status" | "synced" | "closed" | "permission-denied", ...}` and, with
// Hocuspocus, `authenticated` (with its scope) and `refused` (SyncStatus 0 for an update).
// stdout carries nothing else (the provider's own warnings go to stderr).
// Commands: connect, set_token, disconnect, wait_synced, wait_settled, wait_acked, edit,
// start_typing, stop_typing, state, open, measure, exit (see `commands` below; tests/e2e/clients.py
// drives them).
//
// Acknowledgements. The server broadcasts an update, its sender included, only after the update
// is durable in the log, so:
// - `acked`: the local updates (the exact bytes the provider sent) whose echo came back;
// - `durable`: a mirror document holding only what the server sent (sync step 2 and updates).
//   Everything local is acknowledged when the document and the mirror have equal snapshots
//   (state vector and delete set): that is `settled`, and it survives reconnections, when the
//   provider resends unacknowledged changes in its sync step 2 under other bytes.
//   An update the server committed but whose echo was lost (the server died in between) never
//   comes back as such: a reconnecting provider does not resend it, and the server's step 2
//   leaves it out because the document has it. So after each sync step 2 the provider sends
//   (its answer to the server's step 1), this client asks for the server's whole state (a sync
//   step 1 with an empty state vector); the server answers once that step 2 is durable.

import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { HocuspocusProvider } from '@hocuspocus/provider'
import { HocuspocusProvider as HocuspocusProviderV2 } from 'hocuspocus-provider-v2'
import { HocuspocusProvider as HocuspocusProviderV3 } from 'hocuspocus-provider-v3'
import * as decoding from 'lib0/decoding'

const MESSAGE_SYNC = 0
const MESSAGE_AUTH = 2
const HOCUSPOCUS_SYNC_STATUS = 8
const SYNC_STEP2 = 1
const SYNC_UPDATE = 2
const WHOLE_STATE_REQUEST = new Uint8Array([MESSAGE_SYNC, 0, 1, 0]) // step 1, empty vector

// The project schema's roots, declared with their types: `toJSON` leaves out a root that only
// updates from others have named (Yjs cannot know its type until it is declared).
const declareRoots = (ydoc) => ({
  meta: ydoc.getMap('meta'),
  tracks: ydoc.getArray('tracks'),
  lyrics: ydoc.getText('lyrics'),
  comments: ydoc.getArray('comments'),
  markers: ydoc.getArray('markers')
})

const doc = new Y.Doc()
const mirror = new Y.Doc()
const { meta, tracks, lyrics, comments, markers } = declareRoots(doc)

const sent = new Map() // base64 of a sent, not yet echoed, non-empty update -> times sent
// Sync step 1s sent on this socket and not yet answered. The server answers a step 1 only once
// every update it applied before has committed, while in on-receipt mode another client's
// update reaches the mirror before its commit: the mirror says everything is durable only
// when no answer is due.
let answersDue = 0
const acked = [] // base64 of local updates whose echo was received, in order
let provider = null
let hocuspocus = false // which provider; Hocuspocus acknowledges with SyncStatus, not echoes
let typing = null
let currentToken = null // Hocuspocus asks for it through a function: `set_token` renews it
let renewalToken = null // if set: what the function answers from its second call on
let tokenCalls = 0
let waiters = []

const b64 = (bytes) => Buffer.from(bytes).toString('base64')
const emit = (message) => process.stdout.write(JSON.stringify(message) + '\n')

const isEmptyUpdate = (update) => {
  const { structs, ds } = Y.decodeUpdate(update)
  return structs.length === 0 && ds.clients.size === 0
}

// The sync message's update, if `frame` is sync step 2 or an update; else null.
const syncPayload = (frame) => {
  const decoder = decoding.createDecoder(frame)
  if (decoding.readVarUint(decoder) !== MESSAGE_SYNC) return null
  const step = decoding.readVarUint(decoder)
  if (step !== SYNC_STEP2 && step !== SYNC_UPDATE) return null
  return { step, update: decoding.readVarUint8Array(decoder) }
}

// Records a sent update (and a sync step 1's answer due); true if the frame is sync step 2.
const outgoing = (frame) => {
  if (frame.length > 1 && frame[0] === MESSAGE_SYNC && frame[1] === 0) answersDue += 1
  const message = syncPayload(frame)
  if (message === null) return false
  if (!isEmptyUpdate(message.update)) {
    const key = b64(message.update)
    sent.set(key, (sent.get(key) || 0) + 1)
  }
  return message.step === SYNC_STEP2
}

const incoming = (frame) => {
  const decoder = decoding.createDecoder(frame)
  const type = decoding.readVarUint(decoder)
  if (type === MESSAGE_AUTH) {
    decoding.readVarUint(decoder) // 0: permission denied
    emit({ event: 'permission-denied', reason: decoding.readVarString(decoder) })
    return
  }
  const message = syncPayload(frame)
  if (message === null) return
  if (message.step === SYNC_STEP2 && answersDue > 0) answersDue -= 1
  Y.applyUpdate(mirror, message.update, 'server')
  if (message.step === SYNC_UPDATE) {
    const key = b64(message.update)
    const count = sent.get(key)
    if (count !== undefined) {
      if (count > 1) sent.set(key, count - 1)
      else sent.delete(key)
      acked.push(key)
    }
  }
  notify()
}

// A WebSocket that shows the test every frame the provider sends and receives. The listener is
// added before the provider sets `onmessage`, so a frame is seen before the provider handles it.
class TappedWebSocket extends WebSocket {
  constructor (url, protocols) {
    super(url, protocols)
    answersDue = 0 // a new connection: what the last one asked is answered on this one or never
    this.addEventListener('message', (event) => incoming(new Uint8Array(event.data)))
  }

  send (data, ...rest) {
    const step2 = outgoing(new Uint8Array(data))
    super.send(data, ...rest)
    if (step2) {
      answersDue += 1
      super.send(WHOLE_STATE_REQUEST)
    }
  }
}

const connected = () => {
  if (provider === null) return false
  if (hocuspocus) return provider.isAuthenticated && provider.isSynced
  return provider.wsconnected && provider.synced
}
const settled = () => {
  if (!connected()) return false
  if (hocuspocus) return provider.unsyncedChanges === 0
  return answersDue === 0 && Y.equalSnapshots(Y.snapshot(doc), Y.snapshot(mirror))
}

const notify = () => {
  const still = []
  for (const waiter of waiters) {
    if (waiter.check()) {
      clearTimeout(waiter.timer)
      waiter.resolve()
    } else {
      still.push(waiter)
    }
  }
  waiters = still
}

const until = (what, check, timeoutMs) => new Promise((resolve, reject) => {
  if (check()) {
    resolve()
    return
  }
  const waiter = { check, resolve }
  waiter.timer = setTimeout(() => {
    waiters = waiters.filter((w) => w !== waiter)
    reject(new Error(`timed out after ${timeoutMs} ms waiting until ${what}: ` +
      JSON.stringify(summary())))
  }, timeoutMs)
  waiters.push(waiter)
})

const summary = () => ({
  connected: connected(),
  unacked: hocuspocus
    ? provider.unsyncedChanges
    : [...sent.values()].reduce((a, b) => a + b, 0),
  echoed: acked.length,
  settled: settled()
})

doc.on('afterTransaction', notify)

// Edits, addressed so that concurrent edits cannot make them ambiguous (tracks by their id).
const track = (id) => {
  const found = tracks.toArray().find((t) => t.get('id') === id)
  if (found === undefined) throw new Error(`no track ${id}`)
  return found
}

const clip = (trackId, id) => {
  const found = track(trackId).get('clips').toArray().find((c) => c.get('id') === id)
  if (found === undefined) throw new Error(`no clip ${id} on track ${trackId}`)
  return found
}

// An item of a root array of maps (comments, markers) by its id.
const item = (array, id) => {
  const found = array.toArray().find((m) => m.get('id') === id)
  if (found === undefined) throw new Error(`no item ${id}`)
  return found
}

const removeItem = (array, found) => array.delete(array.toArray().indexOf(found), 1)

const newMap = (fields) => {
  const map = new Y.Map()
  for (const [key, value] of Object.entries(fields)) map.set(key, value)
  return map
}

const newTrack = (fields) => {
  const map = newMap(fields)
  map.set('clips', new Y.Array())
  return map
}

// A Y.Array cannot move an item: a move deletes it and inserts a copy (Y.Map.clone copies its
// nested types too), as studio clients do.
const moveTrack = (id, index) => {
  const found = track(id)
  const copy = found.clone()
  removeItem(tracks, found)
  tracks.insert(index, [copy])
}

const operations = {
  'meta.set': (key, value) => meta.set(key, value),
  'meta.delete': (key) => meta.delete(key),
  'tracks.push': (fields) => tracks.push([newTrack(fields)]),
  'tracks.insert': (index, fields) => tracks.insert(index, [newTrack(fields)]),
  'tracks.delete': (id) => removeItem(tracks, track(id)),
  'tracks.move': (id, index) => moveTrack(id, index),
  'track.set': (id, key, value) => track(id).set(key, value),
  'track.delete': (id, key) => track(id).delete(key),
  // A map under a track (its `analysis`), written whole.
  'track.set_map': (id, key, fields) => track(id).set(key, newMap(fields)),
  'clips.push': (id, fields) => track(id).get('clips').push([newMap(fields)]),
  'clips.delete': (id, clipId) => removeItem(track(id).get('clips'), clip(id, clipId)),
  'clip.set': (id, clipId, key, value) => clip(id, clipId).set(key, value),
  'comments.push': (fields) => comments.push([newMap(fields)]),
  'comments.delete': (id) => removeItem(comments, item(comments, id)),
  'comment.set': (id, key, value) => item(comments, id).set(key, value),
  'markers.push': (fields) => markers.push([newMap(fields)]),
  'markers.delete': (id) => removeItem(markers, item(markers, id)),
  'marker.set': (id, key, value) => item(markers, id).set(key, value),
  // A root outside the project schema (a chat, a plugin's data), as an array of values.
  'root.push': (root, ...values) => doc.getArray(root).push(values),
  'lyrics.insert': (index, text) => lyrics.insert(Math.min(index, lyrics.length), text),
  'lyrics.append': (text) => lyrics.insert(lyrics.length, text),
  'lyrics.delete': (index, length) => lyrics.delete(index, length),
  'lyrics.fill': (char, count) => lyrics.insert(lyrics.length, char.repeat(count)),
  'meta.set_bigint': (key, decimal) => meta.set(key, BigInt(decimal))
}

const edit = (ops) => {
  doc.transact(() => {
    for (const [name, ...args] of ops) {
      const operation = operations[name]
      if (operation === undefined) throw new Error(`unknown operation ${name}`)
      operation(...args)
    }
  })
}

// Types `text` one character per transaction (and deletes every `deleteEvery`th character it
// typed), `intervalMs` apart, yielding to the event loop between keystrokes so echoes keep
// being read.
const startTyping = (text, deleteEvery, intervalMs) => {
  const state = { typed: 0, stopped: false }
  const done = (async () => {
    for (const char of text) {
      if (state.stopped) break
      lyrics.insert(lyrics.length, char)
      state.typed += 1
      if (deleteEvery > 0 && state.typed % deleteEvery === 0) lyrics.delete(lyrics.length - 1, 1)
      await new Promise((resolve) =>
        intervalMs > 0 ? setTimeout(resolve, intervalMs) : setImmediate(resolve))
    }
  })()
  state.done = done
  return state
}

const state = () => ({
  json: doc.toJSON(),
  client_id: doc.clientID,
  state_vector: b64(Y.encodeStateVector(doc)),
  update: b64(Y.encodeStateAsUpdate(doc)),
  durable: b64(Y.encodeStateAsUpdate(mirror)),
  acked: [...acked],
  ...summary()
})

// Node 20 has no global WebSocket, and the 2.x provider reads it (as the default of its
// socket's options) before it looks at WebSocketPolyfill.
globalThis.WebSocket ??= WebSocket

const HOCUSPOCUS_PROVIDERS = {
  hocuspocus: HocuspocusProvider,
  'hocuspocus-v2': HocuspocusProviderV2,
  'hocuspocus-v3': HocuspocusProviderV3
}

const connectHocuspocus = (url, room, token, Provider, sessionAwareness) => {
  hocuspocus = true
  currentToken = token
  provider = new Provider({
    url,
    name: room,
    document: doc,
    token: () => {
      tokenCalls += 1
      if (tokenCalls > 1 && renewalToken !== null) currentToken = renewalToken
      return currentToken
    },
    // Names the document `<room>\0<session id>` on the wire, so that one document may have
    // several providers on one socket.
    sessionAwareness,
    WebSocketPolyfill: WebSocket,
    onStatus: ({ status }) => emit({ event: 'status', status }),
    onSynced: ({ state }) => {
      emit({ event: 'synced', synced: state })
      notify()
    },
    // 2.x emits `authenticated` without its scope; it keeps it as `authorizedScope`.
    onAuthenticated: (data) => {
      emit({ event: 'authenticated', scope: data?.scope ?? provider.authorizedScope })
      notify()
    },
    onAuthenticationFailed: ({ reason }) => emit({ event: 'permission-denied', reason }),
    onUnsyncedChanges: notify,
    onClose: ({ event }) => {
      emit({ event: 'closed', code: event.code, reason: event.reason })
      notify()
    }
  })
  provider.on('unsyncedChanges', notify) // 2.x has no onUnsyncedChanges option
  // (Not the onMessage option: the provider hands its options to its socket too, which emits
  // `message` with another payload.) The provider ignores a refusal (SyncStatus 0): report it.
  provider.setAwarenessField('user', { name: room })
  provider.on('message', ({ event }) => {
    const decoder = decoding.createDecoder(new Uint8Array(event.data))
    decoding.readVarString(decoder) // document name
    if (decoding.readVarUint(decoder) !== HOCUSPOCUS_SYNC_STATUS) return
    if (decoding.readVarInt(decoder) !== 1) emit({ event: 'refused' })
  })
}

const connectYWebsocket = (url, room, token) => {
  provider = new WebsocketProvider(url, room, doc, {
    params: { token },
    WebSocketPolyfill: TappedWebSocket,
    disableBc: true,
    maxBackoffTime: 500
  })
  provider.on('status', ({ status }) => emit({ event: 'status', status }))
  provider.on('sync', (synced) => {
    emit({ event: 'synced', synced })
    notify()
  })
  provider.on('connection-close', (event) => {
    if (event !== null) emit({ event: 'closed', code: event.code, reason: event.reason })
    notify()
  })
  provider.awareness.setLocalStateField('user', { name: room })
}

const commands = {
  // The first call creates the provider (`url` is the endpoint); later calls reconnect it, a
  // y-websocket provider to `url` (which may name another node, as a load balancer would).
  connect: ({
    url, room, token, dialect, session_awareness: sessionAwareness = false, renewal_token: renewal = null
  }) => {
    renewalToken = renewal
    if (provider !== null && !hocuspocus) provider.serverUrl = url
    if (provider !== null) provider.connect()
    else if (dialect in HOCUSPOCUS_PROVIDERS) {
      connectHocuspocus(url, room, token, HOCUSPOCUS_PROVIDERS[dialect], sessionAwareness)
    }
    else connectYWebsocket(url, room, token)
    return {}
  },
  // The token the Hocuspocus provider sends from now on (when the server asks, or reconnecting).
  set_token: ({ token }) => {
    currentToken = token
    return {}
  },
  disconnect: () => {
    provider.disconnect()
    return {}
  },
  wait_synced: ({ timeout_ms: ms }) => until('synced', connected, ms),
  wait_settled: ({ timeout_ms: ms }) => until('every local change is acknowledged', settled, ms),
  wait_acked: ({ count, timeout_ms: ms }) => until(`${count} echoes`, () => acked.length >= count, ms),
  edit: ({ ops }) => {
    edit(ops)
    return {}
  },
  start_typing: ({ text, delete_every: deleteEvery = 0, interval_ms: intervalMs = 0 }) => {
    typing = startTyping(text, deleteEvery, intervalMs)
    return {}
  },
  stop_typing: async () => {
    typing.stopped = true
    await typing.done
    return { typed: typing.typed }
  },
  state: () => state(),
  // A Yjs update (base64) opened in a new document, as a client opens a project's state at a
  // version: that document's JSON.
  open: ({ update }) => {
    const opened = new Y.Doc()
    declareRoots(opened)
    Y.applyUpdate(opened, Buffer.from(update, 'base64'))
    return { json: opened.toJSON() }
  },
  // What `state` says of a large document, without copying it.
  measure: () => ({ lyrics_length: lyrics.length, meta_keys: [...meta.keys()].sort(), ...summary() }),
  exit: () => {
    if (provider !== null) provider.destroy()
    setImmediate(() => process.exit(0))
    return {}
  }
}

const answer = async (line) => {
  let request
  try {
    request = JSON.parse(line)
    const command = commands[request.cmd]
    if (command === undefined) throw new Error(`unknown command ${request.cmd}`)
    const result = await command(request)
    emit({ id: request.id, ok: true, ...(result || {}) })
  } catch (error) {
    emit({ id: request === undefined ? null : request.id, ok: false, error: String(error.stack || error) })
  }
}

createInterface({ input: process.stdin }).on('line', (line) => { answer(line) })
process.stdin.on('end', () => process.exit(0))
