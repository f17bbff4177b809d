/**
 * Event-driven waiting for tests: re-check a condition each time something it depends on
 * fires, and fail with what was awaited once the timeout passes. Never sleeps.
 */
import type { EventEmitter } from 'node:events'

export interface WaitOptions {
  /** What is awaited, for the timeout error. */
  what: string
  timeoutMs?: number
}

/** A source of change notifications: subscribe returns the unsubscribe function. */
export type Subscribe = (notify: () => void) => () => void

export const DEFAULT_TIMEOUT_MS = 10_000

type Falsy = undefined | null | false

/**
 * Resolves with the first truthy value of `check`, evaluated now and after every notification
 * from each source; rejects after the timeout. `check` may be async (reading a store, fetching
 * /metrics): one evaluation runs at a time, and a notification during it runs another after.
 */
export const waitUntil = <T>(
  sources: Subscribe[],
  check: () => T | Falsy | Promise<T | Falsy>,
  { what, timeoutMs = DEFAULT_TIMEOUT_MS }: WaitOptions,
): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const unsubscribers: (() => void)[] = []
    let done = false
    let running = false
    let again = false
    const finish = (fn: () => void): void => {
      if (done) return
      done = true
      clearTimeout(timer)
      for (const unsubscribe of unsubscribers) unsubscribe()
      fn()
    }
    const settle = (value: T | Falsy): void => {
      if (value) finish(() => resolve(value))
    }
    const evaluate = (): void => {
      if (done) return
      if (running) {
        again = true
        return
      }
      let value: T | Falsy | Promise<T | Falsy>
      try {
        value = check()
      } catch (err) {
        return finish(() => reject(err))
      }
      if (!(value instanceof Promise)) return settle(value)
      running = true
      value.then(v => {
        running = false
        settle(v)
        if (again) {
          again = false
          evaluate()
        }
      }, err => finish(() => reject(err)))
    }
    const timer = setTimeout(() => finish(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))), timeoutMs)
    for (const subscribe of sources) unsubscribers.push(subscribe(evaluate))
    evaluate()
  })

/** Notifications from an EventEmitter-like object (Node's, lib0's Observable, a Y.Doc). */
export type Listenable =
  | {
    on(event: string, f: (...args: never[]) => void): unknown
    off(event: string, f: (...args: never[]) => void): unknown
  }
  | EventEmitter

/**
 * A notification every `ms`: for a condition with no event of its own (another process's
 * /metrics or /v1/regions, a row in a database). Still a wait for the condition, with its timeout.
 */
export const every = (ms: number): Subscribe => notify => {
  const timer = setInterval(notify, ms)
  return () => clearInterval(timer)
}

export const on = (emitter: Listenable, event: string): Subscribe =>
  notify => {
    const listener = (): void => notify()
    ;(emitter as EventEmitter).on(event, listener)
    return () => { (emitter as EventEmitter).off(event, listener) }
  }

/**
 * Resolves with the arguments of the next `event`, or rejects on timeout. Any emitter with
 * on/off will do (lib0's Observable and Hocuspocus's have no `once`).
 */
export const nextEvent = <A extends unknown[]>(
  emitter: Listenable,
  event: string,
  { what, timeoutMs = DEFAULT_TIMEOUT_MS }: WaitOptions,
): Promise<A> =>
  new Promise<A>((resolve, reject) => {
    const target = emitter as EventEmitter
    const listener = (...args: unknown[]): void => {
      clearTimeout(timer)
      target.off(event, listener)
      resolve(args as A)
    }
    const timer = setTimeout(() => {
      target.off(event, listener)
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`))
    }, timeoutMs)
    target.on(event, listener)
  })
