// The Kafka view: for every `kafka` source, its partitions' committed offset, end
// offset and lag, refreshed with the counters. Read-only: it offers no action.

import { compact } from '../chart'
import { clear, h } from '../dom'
import { partitionRows } from '../kafka'
import { Live } from '../state'

export function kafkaView(live: Live): HTMLElement {
  const body = h('div', { id: 'kafka-partitions' })
  const root = h(
    'section',
    { class: 'view kafka' },
    h('p', { class: 'muted' }, 'Assigned partitions of each kafka source. Lag and end offset come from librdkafka statistics (every statistics_interval_ms); the committed offset is the next record to read.'),
    body,
  )
  const draw = () => {
    const rows = partitionRows(live.components)
    clear(body)
    if (rows.length === 0) {
      body.append(h('p', { class: 'muted' }, 'No partition is assigned yet.'))
      return
    }
    const groups = new Map<string, typeof rows>()
    for (const r of rows) groups.set(r.component, [...(groups.get(r.component) ?? []), r])
    for (const [component, list] of groups) {
      const total = list.reduce((s, r) => s + (r.lag ?? 0), 0)
      body.append(
        h('h2', {}, component, h('span', { class: 'muted' }, ` · total lag ${compact(total)}`)),
        h(
          'table',
          { class: 'grid kafka-table', 'data-component': component },
          h('thead', {}, h('tr', {}, ...['topic', 'partition', 'committed offset', 'end offset', 'lag'].map((t) => h('th', {}, t)))),
          h(
            'tbody',
            {},
            ...list.map((r) =>
              h(
                'tr',
                { 'data-topic': r.topic, 'data-partition': r.partition, 'data-lag': r.lag ?? '' },
                h('td', {}, r.topic),
                h('td', { class: 'num' }, r.partition),
                h('td', { class: 'num' }, r.committed ?? '—'),
                h('td', { class: 'num' }, r.end ?? '—'),
                h('td', { class: 'num lag' }, r.lag ?? '—'),
              ),
            ),
          ),
        ),
      )
    }
  }
  live.onUpdate(draw)
  return root
}
