// Sends numbered events to a `beats` source over TLS with the npm package
// lumberjack-protocol (1.0.7, logstash-forwarder's protocol v1: a window-size frame
// once, then one `D` frame of key/value pairs per event; it parses the server's
// ACKs and insists they are version '1'). Presents a client certificate.
//   node lumberjack_protocol_send.js PORT TOTAL WINDOW CA CERT KEY
// Waits until the client's last ACK covers every event; prints one JSON line.
'use strict'
const fs = require('fs')
const lumberjack = require('lumberjack-protocol')

const [port, total, window] = process.argv.slice(2, 5).map(Number)
const [ca, cert, key] = process.argv.slice(5, 8).map((f) => fs.readFileSync(f))

const client = lumberjack.client(
  { host: '127.0.0.1', port, ca: [ca], cert, key },
  { windowSize: window, maxQueueSize: total + 1, reconnect: 200 },
)
let errors = 0
client.on('disconnect', (err) => { if (err) errors += 1 })
for (let n = 0; n < total; n++) {
  client.writeDataFrame({ line: `line-${String(n).padStart(7, '0')} v1`, n: String(n), host: 'v1-host' })
}
const started = Date.now()
const poll = setInterval(() => {
  const last = client._socket ? client._socket.lastAck : 0
  if (last === total) {
    clearInterval(poll)
    console.log(JSON.stringify({ sent: total, last_ack: last, errors, ms: Date.now() - started }))
    // Its close() leaves the TLS socket open.
    process.exit(0)
  } else if (Date.now() - started > 60000) {
    console.error(`timed out at ack ${last}`)
    process.exit(2)
  }
}, 50)
