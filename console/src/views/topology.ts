// The topology view: sources → transforms → sinks left to right, each edge labelled
// with its events/s, each node coloured by health; a click opens the component's
// counters, errors by type and a rate chart of the last minutes.

import { compact, drawLines } from '../chart'
import { clear, h, svg } from '../dom'
import { Layout, layout } from '../layout'
import { Live, outputKey } from '../state'
import { Component } from '../types'

const NODE_W = 190
const NODE_H = 58
const COL_GAP = 110
const ROW_GAP = 34

export function topologyView(live: Live): HTMLElement {
  let selected: string | null = null
  let graph: Layout | null = null
  const canvas = h('div', { class: 'graph' })
  const panel = h('aside', { class: 'panel', hidden: true })
  const root = h('section', { class: 'view topology' }, canvas, panel)

  const x = (column: number) => 16 + column * (NODE_W + COL_GAP)
  const y = (row: number) => 16 + row * (NODE_H + ROW_GAP)

  function draw() {
    graph ??= layout(live.topology.components)
    const g = graph
    const width = x(g.columns) - COL_GAP + 16
    const height = y(g.rows) - ROW_GAP + 16
    const root = svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': 'topology' })
    for (const e of g.edges) {
      const a = g.nodes.get(e.from)
      const b = g.nodes.get(e.to)
      if (!a || !b) continue
      const [x1, y1, x2, y2] = [x(a.column) + NODE_W, y(a.row) + NODE_H / 2, x(b.column), y(b.row) + NODE_H / 2]
      const mid = (x1 + x2) / 2
      const rate = live.rates.latest(outputKey(e.from, e.output))
      root.appendChild(
        svg('path', { class: rate > 0 ? 'edge flowing' : 'edge', d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}` }),
      )
      const name = e.output ? `${e.from}.${e.output}` : e.from
      root.appendChild(
        svg(
          'text',
          { class: 'edge-label', x: mid, y: (y1 + y2) / 2 - 6, 'text-anchor': 'middle', 'data-edge': `${name}->${e.to}`, 'data-rate': rate.toFixed(3) },
          `${e.output ? e.output + ' · ' : ''}${compact(rate)}/s`,
        ),
      )
    }
    for (const n of live.topology.components) {
      const p = g.nodes.get(n.id)
      if (!p) continue
      const c = live.component(n.id)
      const status = c?.health.status ?? 'ok'
      const rate = c ? live.rates.latest(`${n.id}:${n.kind === 'sink' ? 'in' : 'out'}`) : 0
      const node = svg(
        'g',
        { class: `node ${status}${selected === n.id ? ' selected' : ''}`, 'data-node': n.id, 'data-health': status, transform: `translate(${x(p.column)},${y(p.row)})`, tabindex: 0 },
        svg('rect', { width: NODE_W, height: NODE_H, rx: 8 }),
        svg('rect', { class: 'stripe', width: 6, height: NODE_H, rx: 3 }),
        svg('text', { class: 'node-id', x: 16, y: 22 }, n.id),
        svg('text', { class: 'node-type', x: 16, y: 42 }, `${n.type} · ${n.kind}`),
        svg('text', { class: 'node-rate', x: NODE_W - 10, y: 22, 'text-anchor': 'end' }, `${compact(rate)}/s`),
        svg('title', {}, c?.health.reason ?? status),
      )
      node.addEventListener('click', () => {
        selected = selected === n.id ? null : n.id
        draw()
      })
      root.appendChild(node)
    }
    clear(canvas)
    canvas.appendChild(root)
    drawPanel()
  }

  function drawPanel() {
    const c = selected ? live.component(selected) : undefined
    panel.hidden = !c
    clear(panel)
    if (!c) return
    const chart = h('canvas', { class: 'rate-chart', width: 320, height: 140 })
    panel.append(
      h('header', {}, h('h2', {}, c.id), h('button', { class: 'close', title: 'Close', onclick: () => { selected = null; draw() } }, '×')),
      h('p', { class: `health ${c.health.status}` }, c.health.status, c.health.reason ? ` — ${c.health.reason}` : ''),
      h('p', { class: 'muted' }, `${c.type} ${c.kind}`),
      chart,
      h('p', { class: 'legend' }, h('span', { class: 'swatch in' }), 'received/s ', h('span', { class: 'swatch out' }), c.kind === 'sink' ? 'written/s' : 'sent/s'),
      counterTable('Events', {
        received: c.counters.received_events,
        [c.kind === 'sink' ? 'written' : 'sent']: c.counters.sent_events,
        'received bytes': c.counters.received_bytes,
        'input queue (batches)': c.counters.input_queue_batches,
      }),
      counterTable('Errors by type', c.counters.errors),
      counterTable('Discarded by reason', c.counters.discarded),
      counterTable('Outputs', c.counters.outputs),
      counterTable('Acknowledged', c.counters.acknowledged),
      counterTable('Other counters', c.counters.counters),
      counterTable('Gauges', c.counters.gauges),
    )
    const now = performance.now()
    const toWall = (t: number) => Date.now() - (now - t * 1000)
    drawLines(chart, [
      { name: 'in', points: live.rates.history(`${c.id}:in`).map(([t, r]) => [toWall(t), r]) },
      { name: 'out', points: live.rates.history(`${c.id}:out`).map(([t, r]) => [toWall(t), r]) },
    ])
  }

  live.onUpdate(draw)
  return root
}

function counterTable(title: string, values: Record<string, number>): HTMLElement | null {
  const entries = Object.entries(values)
  if (entries.length === 0) return null
  return h(
    'table',
    { class: 'counters' },
    h('caption', {}, title),
    ...entries.map(([k, v]) => h('tr', {}, h('th', {}, k), h('td', {}, v.toLocaleString('en-US')))),
  )
}

export function healthSummary(components: Component[]): Record<string, number> {
  const s: Record<string, number> = { ok: 0, degraded: 0, failing: 0 }
  for (const c of components) s[c.health.status] = (s[c.health.status] ?? 0) + 1
  return s
}
