// A project's document edits for load/studio_log.py, made by the JavaScript yjs: the same studio
// edits as studio_log's pycrdt sessions (keystrokes in the lyrics, faders, clips, tracks,
// comments, markers, tempo), for logs too long for pycrdt, whose text inserts walk the text
// from its start (a million-update project took hours there; yjs's search markers keep them
// short).
//
// Input (argv[2]): JSON {"seed": int, "sessions": [updates per session...], "snapshot_every": int}.
// Output (stdout), frames of a one-byte kind and, for kinds 0 and 2, a 4-byte big-endian length
// and bytes: 0 an update (one transaction of one session), 1 the end of a session, 2 the whole
// document's state after the update before it (every `snapshot_every` updates of the project).
// Each session is a new Y.Doc (a new client) loaded from the state the previous one left.

import * as fs from 'node:fs'
import * as Y from 'yjs'

const MAX_TRACKS = 16
const MAX_LYRICS = 8000 // characters: a song's lyrics, with drafts (see type())
const MAX_CLIPS = 200 // per track: when full, a clip is deleted instead of added
const MAX_COMMENTS = 1000 // when full, the oldest comment is deleted before one is added
const MAX_MARKERS = 100 // when full, the oldest marker is deleted before one is added
const LETTERS = 'etaoinshrdlu      '

function mulberry32 (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const plan = JSON.parse(process.argv[2])
const random = mulberry32(plan.seed)
const below = (n) => Math.floor(random() * n)
const choice = (items) => items[below(items.length)]
const uniform = (lo, hi) => lo + (hi - lo) * random()
const round = (x, digits) => Math.round(x * 10 ** digits) / 10 ** digits

const chunks = []
let buffered = 0
function out (kind, bytes) {
  const head = Buffer.alloc(bytes === undefined ? 1 : 5)
  head[0] = kind
  if (bytes !== undefined) head.writeUInt32BE(bytes.length, 1)
  chunks.push(head)
  buffered += head.length
  if (bytes !== undefined) {
    chunks.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length))
    buffered += bytes.length
  }
  if (buffered > 1 << 20) flush()
}
// Written with blocking writes to fd 1, never through process.stdout: its writes to a full pipe
// wait for an event loop that this script never gives back (they piled up in memory).
function flush () {
  const data = Buffer.concat(chunks)
  let written = 0
  while (written < data.length) {
    try {
      written += fs.writeSync(1, data, written, data.length - written)
    } catch (error) {
      if (error.code !== 'EAGAIN') throw error
    }
  }
  chunks.length = 0
  buffered = 0
}

class Session {
  constructor (state) {
    this.doc = new Y.Doc()
    this.doc.clientID = 1 + below(2 ** 31 - 2)
    if (state) Y.applyUpdate(this.doc, state)
    this.meta = this.doc.getMap('meta')
    this.tracks = this.doc.getArray('tracks')
    this.lyrics = this.doc.getText('lyrics')
    this.comments = this.doc.getArray('comments')
    this.markers = this.doc.getArray('markers')
    this.cursor = this.lyrics.length
    this.captured = null
    this.doc.on('update', (update) => { this.captured = update })
  }

  edit () {
    while (this.captured === null) this.doc.transact(() => this.one())
    const update = this.captured
    this.captured = null
    return update
  }

  one () {
    if (this.tracks.length === 0) {
      this.meta.set('title', `Song ${below(10000)}`)
      this.meta.set('bpm', choice([90, 100, 120, 128, 140]))
      this.meta.set('key', choice(['C', 'Am', 'F#m', 'Eb']))
      this.meta.set('time_signature', '4/4')
      this.addTrack()
      return
    }
    const roll = random()
    if (roll < 0.55) this.type()
    else if (roll < 0.60) this.backspace()
    else if (roll < 0.72) { // a fader moves in small steps
      const track = this.track()
      const volume = track.get('volume_db') ?? 0
      track.set('volume_db', round(Math.max(-60, Math.min(6, volume + uniform(-1.5, 1.5))), 1))
    } else if (roll < 0.76) this.track().set('pan', round(uniform(-1, 1), 2))
    else if (roll < 0.85) {
      const clip = this.clip()
      if (clip) clip.set('start', Math.max(0, (clip.get('start') ?? 0) + choice([-1, -0.5, 0.5, 1])))
    } else if (roll < 0.88) {
      const key = choice(['muted', 'solo'])
      const track = this.track()
      track.set(key, !track.get(key))
    } else if (roll < 0.92) this.addClip()
    else if (roll < 0.94 && this.tracks.length < MAX_TRACKS) this.addTrack()
    else if (roll < 0.97) {
      if (this.comments.length >= MAX_COMMENTS) this.comments.delete(0, 1)
      this.comments.push([new Y.Map(Object.entries({
        id: below(2 ** 31).toString(16) + below(2 ** 31).toString(16),
        author: 'bench',
        text: 'maybe louder here?',
        at: round(uniform(0, 180), 1),
        created_at: 1.7e12 + below(1e9),
        resolved: false
      }))])
    } else if (roll < 0.98 && this.comments.length) {
      this.comments.get(below(this.comments.length)).set('resolved', true)
    } else if (roll < 0.99) {
      if (this.markers.length >= MAX_MARKERS) this.markers.delete(0, 1)
      this.markers.push([new Y.Map(Object.entries({
        id: `m${below(1e6)}`, name: 'chorus', at: uniform(0, 180)
      }))])
    } else this.meta.set('bpm', 70 + below(110))
  }

  track () { return this.tracks.get(below(this.tracks.length)) }

  clip () {
    const clips = this.track().get('clips')
    if (!(clips instanceof Y.Array) || clips.length === 0) return null
    return clips.get(below(clips.length))
  }

  addTrack () {
    const n = this.tracks.length
    this.tracks.push([new Y.Map(Object.entries({
      id: `t${n}-${below(1e6)}`,
      name: `Track ${n + 1}`,
      kind: choice(['audio', 'audio', 'midi', 'bus']),
      color: choice(['#e11d48', '#2563eb', '#16a34a']),
      volume_db: 0,
      pan: 0,
      muted: false,
      solo: false,
      clips: new Y.Array()
    }))])
  }

  addClip () {
    const clips = this.track().get('clips')
    if (!(clips instanceof Y.Array)) return
    if (clips.length >= MAX_CLIPS) {
      clips.delete(below(clips.length), 1)
      return
    }
    clips.push([new Y.Map(Object.entries({
      id: `c${below(1e9)}`,
      asset_id: `a${below(1000)}`,
      start: below(128),
      length: choice([2, 4, 8]),
      offset: 0,
      gain_db: 0
    }))])
  }

  type () {
    if (random() < 0.03) this.cursor = below(this.lyrics.length + 1) // the cursor jumps
    this.cursor = Math.min(this.cursor, this.lyrics.length)
    if (this.lyrics.length >= MAX_LYRICS) { // full: a stretch before the cursor is cut instead
      const cut = Math.min(this.cursor, 1 + below(60))
      if (cut > 0) {
        this.lyrics.delete(this.cursor - cut, cut)
        this.cursor -= cut
        return
      }
    }
    const char = random() < 0.03 ? '\n' : choice(LETTERS)
    this.lyrics.insert(this.cursor, char)
    this.cursor += 1
  }

  backspace () {
    this.cursor = Math.min(this.cursor, this.lyrics.length)
    if (this.cursor > 0) {
      this.lyrics.delete(this.cursor - 1, 1)
      this.cursor -= 1
    } else this.type()
  }
}

let state = null
let made = 0
for (const size of plan.sessions) {
  const session = new Session(state)
  for (let i = 0; i < size; i++) {
    out(0, session.edit())
    made += 1
    if (made % plan.snapshot_every === 0) out(2, Y.encodeStateAsUpdate(session.doc))
  }
  out(1)
  state = Y.encodeStateAsUpdate(session.doc)
  session.doc.destroy()
}
flush()
