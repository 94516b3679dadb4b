// Sends numbered events to a `beats` source with the npm package lumberjack-client
// (1.0.3: "a small Lumberjack V2 client supporting JSON data, compression and TLS"):
// each round a new client queues WINDOW events while it connects and then writes
// them as one window, one zlib-compressed frame of JSON frames. The client reads no
// ACKs itself; this script watches its socket for them, and starts the next round
// once the window's ACK came (the sequence of its last event, WINDOW).
//   node lumberjack_client_send.js PORT ROUNDS WINDOW
// Prints one JSON line: events sent, ACK frames seen, the last ACKed sequence.
'use strict'
const LumberjackClient = require('lumberjack-client')

const [port, rounds, window] = process.argv.slice(2).map(Number)
let acks = 0
let lastAck = -1

function round(r) {
  return new Promise((resolve, reject) => {
    const client = new LumberjackClient({ host: '127.0.0.1', port })
    let pending = Buffer.alloc(0)
    client.socket.on('data', (chunk) => {
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 6) {
        if (pending[0] !== 0x32 || pending[1] !== 0x41) {
          reject(new Error(`not a v2 ACK frame: ${pending.slice(0, 6).toString('hex')}`))
          return
        }
        const seq = pending.readUInt32BE(2)
        pending = pending.slice(6)
        acks += 1
        if (seq !== 0) lastAck = seq
        if (seq === window) {
          // The client has no close(), and reconnects when its socket closes unless
          // it thinks it is connecting.
          client.connecting = true
          client.socket.end()
          resolve()
        }
      }
    })
    client.socket.on('error', reject)
    for (let i = 0; i < window; i++) {
      const n = r * window + i
      client.log({
        '@timestamp': new Date(Date.UTC(2026, 2, 4, 5, 6, 7)).toISOString(),
        '@metadata': { beat: 'lumberjack-client', type: '_doc' },
        message: `line-${String(n).padStart(7, '0')} from node`,
        host: { hostname: 'node-host' },
        n,
      })
    }
  })
}

async function main() {
  for (let r = 0; r < rounds; r++) await round(r)
  console.log(JSON.stringify({ sent: rounds * window, acks, last_ack: lastAck }))
}

const timer = setTimeout(() => { console.error('timed out'); process.exit(2) }, 60000)
main().then(() => clearTimeout(timer), (e) => { console.error(e); process.exit(1) })
