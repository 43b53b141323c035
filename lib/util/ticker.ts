/**
 * A background job's timer: ticks now and every `ms` after, never keeps the
 * process alive, and can be started once and stopped.
 */
export class Ticker {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly tick: () => unknown) {}

  start(ms: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.tick(), ms);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
