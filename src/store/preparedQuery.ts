// A Kysely query built and compiled once, executed many times with new values. Building a query (an immutable,
// frozen tree) and compiling it cost more CPU and garbage than a SQLite point read itself; the hottest queries of
// a request (POST StopAndQuarantineFile: machine, action and audit inserts) are fixed in shape, so only the values change.
// The SQL still comes from Kysely, from the same typed builder as every other query.
import type { Compilable, CompiledQuery, Kysely, QueryResult } from 'kysely';

/** Stands for the i-th argument while the query is compiled. */
class Slot {
  constructor(readonly index: number) {}
}

export class PreparedQuery<Args extends readonly unknown[], Row> {
  private readonly compiled: CompiledQuery<Row>;
  /** Per compiled parameter: the argument it takes, or -1 for a constant the builder put in. */
  private readonly argOf: number[];

  /**
   * `build` receives one placeholder per argument and must use each as a plain value (never in a list whose
   * length varies, never inspected): the query's shape must not depend on the values.
   */
  constructor(arity: number, build: (...slots: never[]) => Compilable<Row>) {
    const slots = Array.from({ length: arity }, (_, i) => new Slot(i));
    this.compiled = build(...(slots as never[])).compile();
    this.argOf = this.compiled.parameters.map((p) => (p instanceof Slot ? p.index : -1));
    const used = new Set(this.argOf.filter((i) => i >= 0));
    if (used.size !== arity) throw new Error(`PreparedQuery: ${arity - used.size} argument(s) not used as values`);
  }

  /** The compiled query with `args` in place of the placeholders. */
  bind(args: Args): CompiledQuery<Row> {
    const constants = this.compiled.parameters;
    const parameters = this.argOf.map((a, i) => (a >= 0 ? args[a] : constants[i]));
    return { ...this.compiled, parameters };
  }

  async execute(db: Kysely<never> | Kysely<any>, ...args: Args): Promise<Row[]> {
    return (await this.result(db, ...args)).rows;
  }

  /** The driver's whole answer: rows, and for a write the number of rows it changed. */
  async result(db: Kysely<never> | Kysely<any>, ...args: Args): Promise<QueryResult<Row>> {
    return db.executeQuery(this.bind(args));
  }
}
