import { type ChannelListener, subscribe, unsubscribe } from 'node:diagnostics_channel'
import type { DiagnosticsChannel } from '../diagnostics.js'

/** What `instrument()` attached, undone together by the `uninstrument()` it returns. */
export class Subscriptions {
  readonly #undo: (() => void)[] = []

  /** Calls `listener` with each message of `channel` (a plain or a tracing channel). */
  on<Message>(
    channel: DiagnosticsChannel<Message> | { readonly name: string | symbol },
    listener: (message: Message) => void,
  ): void {
    const { name } = channel
    const wrapped = listener as ChannelListener
    subscribe(name, wrapped)
    this.#undo.push(() => unsubscribe(name, wrapped))
  }

  /** Runs `undo` on `uninstrument()`. */
  add(undo: () => void): void {
    this.#undo.push(undo)
  }

  /** Detaches everything, once. */
  close(): void {
    for (const undo of this.#undo.splice(0)) undo()
  }
}
