// The tap view: the live events of one output, newest first, at most 1,000 kept in
// the page; pause, a text filter, and each event expandable as JSON.

import { sse, Unauthorized } from '../api'
import { clear, h } from '../dom'
import { matchesFilter, Ring } from '../ring'
import { Live } from '../state'

export const MAX_ROWS = 1000

interface Row {
  el: HTMLElement
  text: string
}

/** Every output of the topology: `id` and `id.name` for sources and transforms. */
export function tapOutputs(live: Live): string[] {
  return live.topology.components
    .filter((c) => c.kind !== 'sink')
    .flatMap((c) => [c.id, ...c.outputs.map((o) => `${c.id}.${o}`)])
}

export function tapView(live: Live, onUnauthorized: () => void): HTMLElement {
  const rows = new Ring<Row>(MAX_ROWS)
  let received = 0
  let lost = 0
  let stream: AbortController | null = null
  let pausedByUser = false
  const select = h('select', { id: 'tap-output', 'aria-label': 'output' })
  const filter = h('input', { id: 'tap-filter', type: 'search', placeholder: 'filter: words the event must contain' })
  const pause = h('button', { id: 'tap-pause' }, 'Pause')
  const clearButton = h('button', { id: 'tap-clear' }, 'Clear')
  const status = h('span', { id: 'tap-status', class: 'muted' })
  const list = h('ol', { id: 'tap-rows', class: 'tap-rows' })
  const error = h('p', { class: 'error', hidden: true })

  const showStatus = () => {
    status.textContent = `${stream ? 'live' : 'paused'} · ${received.toLocaleString('en-US')} received · ${rows.length} kept${lost ? ` · ${lost} not shown (sampling)` : ''}`
    status.dataset.received = String(received)
    status.dataset.kept = String(rows.length)
  }

  function add(output: string, event: unknown) {
    received++
    const time = new Date().toISOString().slice(11, 23)
    const json = JSON.stringify(event)
    const text = `${output} ${json}`
    const detail = h('pre', { class: 'json', hidden: true })
    const el = h(
      'li',
      { hidden: !matchesFilter(text, filter.value) },
      h('span', { class: 'time' }, time),
      h('span', { class: 'output' }, output),
      h('code', {}, json.length > 400 ? json.slice(0, 399) + '…' : json),
      detail,
    )
    el.addEventListener('click', () => {
      if (!detail.textContent) detail.textContent = JSON.stringify(event, null, 2)
      detail.hidden = !detail.hidden
    })
    list.insertBefore(el, list.firstChild)
    for (const old of rows.push({ el, text })) old.el.remove()
  }

  async function run(output: string, abort: AbortController) {
    error.hidden = true
    const q = new URLSearchParams({ outputs_of: output, limit: '500', interval_ms: '200' })
    try {
      for await (const m of sse(`/api/v1/tap?${q}`, abort.signal)) {
        if (m.event === 'sample') {
          const s = JSON.parse(m.data)
          add(s.output, s.event)
        } else if (m.event === 'lost') {
          lost = JSON.parse(m.data).lost
        }
        showStatus()
      }
    } catch (e) {
      if (abort.signal.aborted) return
      if (e instanceof Unauthorized) return onUnauthorized()
      error.textContent = `The tap stopped: ${(e as Error).message}`
      error.hidden = false
    }
    if (stream === abort) stream = null
    showStatus()
  }

  function start() {
    stop()
    if (!select.value) return
    stream = new AbortController()
    pause.textContent = 'Pause'
    void run(select.value, stream)
    showStatus()
  }

  function stop() {
    stream?.abort()
    stream = null
    pause.textContent = 'Resume'
    showStatus()
  }

  pause.addEventListener('click', () => {
    pausedByUser = !!stream
    if (stream) stop()
    else start()
  })
  clearButton.addEventListener('click', () => {
    rows.clear()
    clear(list)
    received = 0
    lost = 0
    showStatus()
  })
  select.addEventListener('change', start)
  filter.addEventListener('input', () => {
    for (const r of rows.toArray()) r.el.hidden = !matchesFilter(r.text, filter.value)
  })

  const root = h('section', { class: 'view tap' }, h('div', { class: 'toolbar' }, select, filter, pause, clearButton, status), error, list)
  const fill = () => {
    const current = select.value
    clear(select)
    select.append(h('option', { value: '' }, 'choose an output…'), ...tapOutputs(live).map((o) => h('option', { value: o, selected: o === current }, o)))
  }
  fill()
  showStatus()
  // Leaving the view closes the stream: a tap costs the pipeline a copy per sample.
  return Object.assign(root, { onHide: stop, onShow: () => { fill(); if (select.value && !pausedByUser) start() } })
}
