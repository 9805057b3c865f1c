// What one simulated device received and answered, newest last, bounded so a long run cannot grow without limit.

export interface JournalEntry {
  at: string;
  event:
    | 'received'
    | 'ack'
    | 'result'
    | 'cancelled'
    | 'expired'
    | 'offline'
    | 'online'
    | 'never'
    | 'fault'
    | 'rejected';
  actionId?: string;
  type?: string;
  sha1?: string | null;
  outcome?: 'Succeeded' | 'Failed';
  errorHResult?: number;
  reason?: string | null;
  note?: string;
}

export class Journal {
  #entries: JournalEntry[] = [];

  constructor(readonly capacity: number) {}

  add(e: Omit<JournalEntry, 'at'>): void {
    this.#entries.push({ at: new Date().toISOString(), ...e });
    if (this.#entries.length > this.capacity) this.#entries.splice(0, this.#entries.length - this.capacity);
  }

  entries(): JournalEntry[] {
    return [...this.#entries];
  }

  clear(): void {
    this.#entries = [];
  }

  get size(): number {
    return this.#entries.length;
  }
}
