// Unit tests of the console's logic that needs no browser: run with `npm test`
// (tests/console.rs runs them from the test suite).
import { strict as assert } from 'node:assert'
import { test } from 'node:test'
import { chooseChart, compact, niceTicks } from '../src/chart'
import { toCsv } from '../src/csv'
import { partitionRows, parseSeries } from '../src/kafka'
import { layout, parseInput } from '../src/layout'
import { Rates } from '../src/rates'
import { matchesFilter, Ring } from '../src/ring'
import { SseParser } from '../src/sse'
import { Component } from '../src/types'

test('sse: messages split across chunks, CRLF, multi-line data and comments', () => {
  const p = new SseParser()
  assert.deepEqual(p.push('event: sam'), [])
  assert.deepEqual(p.push('ple\r\ndata: {"a":\r'), [])
  assert.deepEqual(p.push('\ndata: 1}\r\n\r\n: keep-alive\n\ndata:x\n\n'), [
    { event: 'sample', data: '{"a":\n1}' },
    { event: 'message', data: 'x' },
  ])
})

test('layout: columns by longest path, named outputs, ids with dots', () => {
  const l = layout([
    { id: 'in', inputs: [] },
    { id: 'parse', inputs: ['in'] },
    { id: 'a.b', inputs: ['parse.dropped'] },
    { id: 'out', inputs: ['parse', 'in', 'a.b'] },
  ])
  assert.equal(l.nodes.get('in')?.column, 0)
  assert.equal(l.nodes.get('parse')?.column, 1)
  assert.equal(l.nodes.get('a.b')?.column, 2)
  assert.equal(l.nodes.get('out')?.column, 3)
  assert.deepEqual(l.edges.find((e) => e.to === 'a.b'), { from: 'parse', output: 'dropped', to: 'a.b' })
  assert.equal(l.columns, 4)
  assert.deepEqual(parseInput('a.b.x', new Set(['a.b'])), { from: 'a.b', output: 'x' })
  assert.equal(parseInput('nope', new Set(['a'])), null)
})

test('layout: rows follow the inputs so edges do not cross', () => {
  const l = layout([
    { id: 's1', inputs: [] },
    { id: 's2', inputs: [] },
    { id: 't2', inputs: ['s2'] },
    { id: 't1', inputs: ['s1'] },
  ])
  assert.equal(l.nodes.get('t1')?.row, 0)
  assert.equal(l.nodes.get('t2')?.row, 1)
})

test('rates: per-second deltas, restarts, bounded history', () => {
  const r = new Rates(3)
  assert.equal(r.update('k', 0, 100), undefined)
  assert.equal(r.update('k', 2, 300), 100)
  assert.equal(r.update('k', 4, 50), undefined, 'a counter that went down starts over')
  for (let i = 1; i <= 5; i++) r.update('k', 4 + i, 50 + 10 * i)
  assert.equal(r.history('k').length, 3)
  assert.equal(r.latest('k'), 10)
  r.retain(() => false)
  assert.equal(r.latest('k'), 0)
})

test('ring: keeps the newest, returns what fell off', () => {
  const r = new Ring<number>(1000)
  const dropped: number[] = []
  for (let i = 0; i < 5000; i++) dropped.push(...r.push(i))
  assert.equal(r.length, 1000)
  assert.equal(dropped.length, 4000)
  assert.equal(r.toArray()[0], 4000)
  assert.ok(matchesFilter('svc=API level=error', 'error api'))
  assert.ok(!matchesFilter('svc=api', 'api error'))
  assert.ok(matchesFilter('anything', '  '))
})

test('csv: quoting per RFC 4180', () => {
  const csv = toCsv(
    [{ name: 'a', type: 'Utf8' }, { name: 'b,c', type: 'Int64' }],
    [['x "y"', 1], [null, 2], ['line\nbreak', null]],
  )
  assert.equal(csv, 'a,"b,c"\r\n"x ""y""",1\r\n,2\r\n"line\nbreak",\r\n')
})

test('chart: a time or category column and a number', () => {
  const num = { name: 'n', type: 'Int64' }
  assert.deepEqual(chooseChart([{ name: 'service', type: 'Utf8' }, num], [['a', 1]]), { kind: 'bar', x: 0, ys: [1] })
  assert.deepEqual(chooseChart([{ name: 'm', type: 'Timestamp(Microsecond, None)' }, num], [['2026-01-01T00:00:00', 1]]), { kind: 'line', x: 0, ys: [1] })
  assert.deepEqual(chooseChart([{ name: 'dt', type: 'Utf8' }, num], [['2026-01-01', 3]]), { kind: 'line', x: 0, ys: [1] })
  assert.equal(chooseChart([num], [[1]]), null)
  assert.equal(chooseChart([{ name: 's', type: 'Utf8' }], [['a']]), null)
  assert.equal(chooseChart([{ name: 's', type: 'Utf8' }, num], []), null)
  assert.deepEqual(niceTicks(0, 97, 5), [0, 20, 40, 60, 80, 100].filter((t) => t <= 97 + 1e-9))
  assert.equal(compact(12345), '12.3k')
  assert.equal(compact(2500000), '2.5M')
})

test('kafka: partitions from the gauges of kafka sources only', () => {
  const c = (id: string, type: string, gauges: Record<string, number>) =>
    ({ id, kind: 'source', type, counters: { gauges } }) as unknown as Component
  const rows = partitionRows([
    c('in', 'kafka', {
      'pipe_kafka_consumer_lag_messages{topic="t",partition="1"}': 7,
      'pipe_kafka_committed_offset{topic="t",partition="1"}': 3,
      'pipe_kafka_end_offset{topic="t",partition="1"}': 10,
      'pipe_kafka_consumer_lag_messages{topic="t",partition="0"}': 0,
      pipe_component_retrying: 0,
    }),
    c('other', 'http', { 'pipe_kafka_consumer_lag_messages{topic="t",partition="0"}': 9 }),
  ])
  assert.deepEqual(rows, [
    { component: 'in', topic: 't', partition: 0, committed: null, end: null, lag: 0 },
    { component: 'in', topic: 't', partition: 1, committed: 3, end: 10, lag: 7 },
  ])
  assert.deepEqual(parseSeries('m{a="x\\"y",b="z"}'), { metric: 'm', labels: { a: 'x"y', b: 'z' } })
})
