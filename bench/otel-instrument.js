// @ts-check
// The OpenTelemetry SDK as bench/otel.js measures it, in memory (so that the figures measure
// the instrumentation, not a network exporter):
//   no exporter  providers with no reader and no span processor: nothing leaves
//   exporter     metrics collected every second and spans batched
// Preloaded (`node --import`) into a client process with `--otel=no-exporter` or
// `--otel=exporter`, it installs `instrument()` before the client makes any dispatcher.
import {
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  BatchSpanProcessor,
  InMemorySpanExporter,
} from '@opentelemetry/sdk-trace-base'
import { instrument } from 'undici-access-token/otel'

/** `instrument()`'s options for the SDK without or with an exporter. */
export function sdkProviders(/** @type {boolean} */ exporting) {
  const metricExporter = new InMemoryMetricExporter(0 /* cumulative */)
  const meterProvider = new MeterProvider({
    readers: exporting
      ? [
          new PeriodicExportingMetricReader({
            exporter: metricExporter,
            exportIntervalMillis: 1_000,
          }),
        ]
      : [],
  })
  const tracerProvider = new BasicTracerProvider({
    spanProcessors: exporting ? [new BatchSpanProcessor(new InMemorySpanExporter())] : [],
  })
  // Exported data is dropped as it comes, so memory stays flat over a long run.
  if (exporting) setInterval(() => metricExporter.reset(), 5_000).unref()
  return { meterProvider, tracerProvider }
}

const mode = process.argv.find((arg) => arg.startsWith('--otel='))
if (mode !== undefined) instrument(sdkProviders(mode === '--otel=exporter'))
