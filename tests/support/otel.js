// @ts-check
// The OpenTelemetry SDK in memory, for the tests of `undici-access-token/otel`: a MeterProvider
// whose metrics are collected on demand, a tracer provider that keeps every finished span, and
// the async-hooks context manager (without one, no span is ever active).
import { context } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'

/** A reader that exports nothing: the test collects when it wants to look. */
class OnDemandReader extends MetricReader {
  async onForceFlush() {}
  async onShutdown() {}
}

/**
 * @typedef {object} Point
 * @property {string} name  the metric's name
 * @property {string} unit
 * @property {import('@opentelemetry/api').Attributes} attributes
 * @property {number} value  a counter's sum, or a histogram's count
 * @property {number} [sum]  a histogram's sum
 */

/**
 * @typedef {object} Telemetry
 * @property {MeterProvider} meterProvider
 * @property {BasicTracerProvider} tracerProvider
 * @property {() => import('@opentelemetry/sdk-trace-base').ReadableSpan[]} spans  finished spans
 * @property {() => Promise<Point[]>} points  every data point now
 * @property {(name: string, attributes?: import('@opentelemetry/api').Attributes) => Promise<number>} total
 *   the sum of `name`'s points whose attributes include `attributes`: a counter's value, or a
 *   histogram's count
 * @property {() => Promise<void>} shutdown
 */

/** @returns {Telemetry} */
export function inMemoryTelemetry() {
  const reader = new OnDemandReader()
  const meterProvider = new MeterProvider({ readers: [reader] })
  const exporter = new InMemorySpanExporter()
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  })
  const points = async () => {
    const { resourceMetrics } = await reader.collect()
    /** @type {Point[]} */
    const found = []
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        const { name, unit } = metric.descriptor
        for (const point of metric.dataPoints) {
          const { attributes } = point
          if (metric.dataPointType === DataPointType.HISTOGRAM) {
            const { count, sum } = /** @type {{ count: number, sum: number }} */ (point.value)
            found.push({ name, unit, attributes, value: count, sum })
          } else {
            found.push({ name, unit, attributes, value: /** @type {number} */ (point.value) })
          }
        }
      }
    }
    return found
  }
  return {
    meterProvider,
    tracerProvider,
    spans: () => exporter.getFinishedSpans(),
    points,
    async total(name, attributes = {}) {
      const matching = (await points()).filter(
        (point) =>
          point.name === name &&
          Object.entries(attributes).every(([key, value]) => point.attributes[key] === value),
      )
      return matching.reduce((sum, point) => sum + point.value, 0)
    },
    async shutdown() {
      await Promise.all([meterProvider.shutdown(), tracerProvider.shutdown()])
    },
  }
}

/** Makes spans active across awaits (AsyncLocalStorage); returns what undoes it. */
export function enableContext() {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  return () => context.disable()
}
