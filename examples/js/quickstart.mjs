// A first JACAMENO client: an account, a project, a live edit with the y-websocket provider, and a
// second client that sees it.
//
//   npm ci                      (once, in this folder)
//   node quickstart.mjs [BASE]  (BASE defaults to JACAMENO_URL, else http://127.0.0.1:8000)
//
// JACAMENO_EMAIL and JACAMENO_PASSWORD name an existing account; without them a new one is made.
// It prints one JSON line with the project id and the document as a fresh client loads it.

import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import WebSocket from 'ws'

const base = (process.argv[2] ?? process.env.JACAMENO_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '')
const email = process.env.JACAMENO_EMAIL ?? `demo-${Date.now()}@example.com`
const password = process.env.JACAMENO_PASSWORD ?? 'correct horse battery staple'
const TIMEOUT_MS = 10_000

// The REST API: JSON in, JSON out; errors are {"error": {"code", "message"}}.
async function api (path, { method = 'GET', token, body } = {}) {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      'content-type': 'application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {})
    },
    body: body === undefined ? undefined : JSON.stringify(body)
  })
  const payload = response.status === 204 ? null : await response.json()
  if (!response.ok) {
    const error = new Error(`${method} ${path}: ${response.status} ${JSON.stringify(payload)}`)
    error.status = response.status
    throw error
  }
  return payload
}

async function login () {
  if (process.env.JACAMENO_EMAIL === undefined) {
    await api('/api/auth/register', { method: 'POST', body: { email, password, display_name: 'Demo' } })
  }
  const tokens = await api('/api/auth/login', { method: 'POST', body: { email, password } })
  return tokens.access_token
}

// The server URL is `ws://HOST:PORT/collab` and the room name is the project id; the access token
// travels as the `token` query parameter (the provider's `params`). To renew it on an open
// provider, set `provider.params.token` before the next (re)connection.
function open (projectId, token) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(`${base.replace(/^http/, 'ws')}/collab`, projectId, doc, {
    WebSocketPolyfill: WebSocket,
    params: { token },
    disableBc: true
  })
  return { doc, provider }
}

function until (provider, event, check = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${TIMEOUT_MS} ms`)), TIMEOUT_MS)
    const handler = (...args) => {
      if (!check(...args)) return
      clearTimeout(timer)
      provider.off(event, handler)
      resolve(args)
    }
    provider.on(event, handler)
    provider.on('connection-close', (e) => reject(new Error(`closed: ${e?.code} ${e?.reason}`)))
  })
}

function documentOf (doc) {
  return {
    meta: doc.getMap('meta').toJSON(),
    tracks: doc.getArray('tracks').toJSON()
  }
}

async function main () {
  const token = await login()
  const project = await api('/api/projects', { method: 'POST', token, body: { title: 'First song' } })

  const writer = open(project.id, token)
  await until(writer.provider, 'sync', (synced) => synced)
  writer.doc.transact(() => {
    writer.doc.getMap('meta').set('bpm', 120)
    const track = new Y.Map()
    track.set('id', 'drums')
    track.set('name', 'Drums')
    track.set('kind', 'audio')
    track.set('volume_db', -6)
    writer.doc.getArray('tracks').push([track])
  })

  // A second client loads the project: once it holds the edit, the server has logged it.
  const reader = open(project.id, token)
  await until(reader.provider, 'sync', (synced) => synced)
  const deadline = Date.now() + TIMEOUT_MS
  while (reader.doc.getArray('tracks').length === 0) {
    if (Date.now() > deadline) throw new Error('the second client never saw the edit')
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  console.log(JSON.stringify({ project: project.id, document: documentOf(reader.doc) }))
  writer.provider.destroy()
  reader.provider.destroy()
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(`quickstart: ${error.message}`)
    process.exit(1)
  }
)
