import type { Counter, Histogram, Meter, ObservableResult } from '@opentelemetry/api'
import { channels, type FetchTraceMessage, fetchTracing, summarize } from '../diagnostics.js'
import {
  type AttributeBuilder,
  errorAttributes,
  errorType,
  serverAttributes,
} from './attributes.js'
import { attributeNames, metricNames } from './names.js'
import type { Subscriptions } from './subscriptions.js'

/** Seconds, as OpenTelemetry's HTTP client duration: a token fetch is one HTTP exchange. */
const fetchBuckets = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
/** Seconds: backoff starts at 1 s and doubles up to 30 s by default; Retry-After up to 300 s. */
const backoffBuckets = [0.5, 1, 2, 4, 8, 16, 32, 64, 128, 300]

/** Records the metrics (names.ts) from the diagnostics channels. */
export function recordMetrics(meter: Meter, attributes: AttributeBuilder, on: Subscriptions): void {
  const seconds = (name: string, description: string, buckets: number[]): Histogram =>
    meter.createHistogram(name, {
      unit: 's',
      description,
      advice: { explicitBucketBoundaries: buckets },
    })
  const count = (name: string, unit: string, description: string): Counter =>
    meter.createCounter(name, { unit, description })
  const fetchDuration = seconds(
    metricNames.fetchDuration,
    'Duration of token fetches, by outcome and reason.',
    fetchBuckets,
  )
  const backoff = seconds(
    metricNames.backoffDuration,
    'Waits imposed on a key after a failed token fetch.',
    backoffBuckets,
  )
  const tokenRequests = count(
    metricNames.tokenRequests,
    '{request}',
    'Token requests started (token fetches), by reason.',
  )
  const cacheMisses = count(
    metricNames.cacheMisses,
    '{miss}',
    'Requests that found no usable cached token, by reason.',
  )
  const retries = count(
    metricNames.retries,
    '{retry}',
    'Requests answered 401 whose response was swallowed and that were sent again with a renewed token.',
  )
  const storeErrors = count(
    metricNames.storeErrors,
    '{error}',
    'Token store calls that failed or timed out (each counted as a miss).',
  )
  countHits(meter, attributes, on)

  on.on(fetchTracing.start, (message: FetchTraceMessage) => {
    tokenRequests.add(1, attributes.ofFetch(message))
  })
  on.on(fetchTracing.asyncEnd, (message: FetchTraceMessage) => {
    const recorded = attributes.ofFetch(message)
    recorded[attributeNames.outcome] = message.error === undefined ? 'success' : 'error'
    if (message.error !== undefined) errorAttributes(summarize(message.error), recorded)
    fetchDuration.record((message.durationMs ?? 0) / 1000, recorded)
  })
  on.on(channels.cacheMiss, ({ key, reason }) => {
    cacheMisses.add(1, attributes.of(key, { [attributeNames.reason]: reason }))
  })
  on.on(channels.retry, ({ key, origin }) => {
    retries.add(1, attributes.of(key, serverAttributes(origin, {})))
  })
  on.on(channels.backoff, ({ key, delayMs, error }) => {
    backoff.record(
      delayMs / 1000,
      attributes.of(key, { [attributeNames.errorType]: errorType(error) }),
    )
  })
  on.on(channels.storeError, ({ key, operation, timedOut, error }) => {
    storeErrors.add(
      1,
      attributes.of(key, {
        [attributeNames.storeOperation]: operation,
        // `timeout` is the semantic conventions' own value for it.
        [attributeNames.errorType]: timedOut ? 'timeout' : error.name,
      }),
    )
  })
}

/**
 * Cache hits happen on every request with a cached token, the hot path: a subscriber that
 * only adds 1 to a number, read by an asynchronous counter when metrics are collected,
 * instead of a synchronous counter that would hash attributes on every request.
 */
function countHits(meter: Meter, attributes: AttributeBuilder, on: Subscriptions): void {
  const hits = new Map<string, number>()
  let total = 0
  const cacheHits = meter.createObservableCounter(metricNames.cacheHits, {
    unit: '{hit}',
    description: 'Requests that found their token cached.',
  })
  const observe = (result: ObservableResult): void => {
    if (attributes.includesKey) {
      for (const [key, count] of hits) result.observe(count, attributes.of(key))
    } else if (total > 0) {
      result.observe(total)
    }
  }
  cacheHits.addCallback(observe)
  on.add(() => cacheHits.removeCallback(observe))
  if (attributes.includesKey) {
    on.on(channels.cacheHit, ({ key }) => {
      hits.set(key, (hits.get(key) ?? 0) + 1)
    })
  } else {
    on.on(channels.cacheHit, () => {
      total++
    })
  }
}
