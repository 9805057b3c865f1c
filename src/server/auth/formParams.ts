// The parameters of a token request: an application/x-www-form-urlencoded body, parsed strictly enough that a
// parameter sent twice cannot be read one way here and another way by a proxy in front of us.

export class FormParams {
  private constructor(
    private readonly values: Map<string, string>,
    /** Names that appeared more than once. */
    readonly duplicates: string[],
  ) {}

  static empty(): FormParams {
    return new FormParams(new Map(), []);
  }

  static parse(body: string): FormParams {
    const values = new Map<string, string>();
    const duplicates: string[] = [];
    for (const [name, value] of new URLSearchParams(body)) {
      if (values.has(name)) duplicates.push(name);
      else values.set(name, value);
    }
    return new FormParams(values, duplicates);
  }

  /** The value, or undefined when absent or empty (Entra treats `client_id=` as missing). */
  get(name: string): string | undefined {
    const v = this.values.get(name);
    return v === undefined || v.length === 0 ? undefined : v;
  }
}

/** Marks a body that was not form-encoded: read (to honour the size limit) and then ignored. */
export const NOT_FORM = Symbol('not a form body');
