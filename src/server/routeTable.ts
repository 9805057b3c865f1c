// Remembers every registered route so that a request whose path exists under another verb gets 405 with Allow
// (as the live service answers) instead of 404.
import type { FastifyInstance } from 'fastify';

interface Entry {
  pattern: RegExp;
  methods: Set<string>;
}

export class RouteTable {
  private readonly entries = new Map<string, Entry>();

  attach(app: FastifyInstance): void {
    app.addHook('onRoute', (opts) => {
      const methods = Array.isArray(opts.method) ? opts.method : [opts.method];
      const url = opts.url;
      let e = this.entries.get(url.toLowerCase());
      if (!e) {
        const source = url
          .split('/')
          .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')))
          .join('/');
        e = { pattern: new RegExp(`^${source}/?$`, 'i'), methods: new Set() };
        this.entries.set(url.toLowerCase(), e);
      }
      for (const m of methods) if (m !== 'HEAD') e.methods.add(m);
    });
  }

  /** Verbs the path answers to, empty when no route matches it at all. */
  allowedMethods(path: string): string[] {
    const out = new Set<string>();
    for (const e of this.entries.values()) if (e.pattern.test(path)) for (const m of e.methods) out.add(m);
    return [...out].sort();
  }
}
