// $filter text → FilterExpr: a recursive-descent parser over the tokens, with type checks against the entity's
// fields. Precedence: not > and > or; `not` takes the comparison (or group) that follows it, so
// `not status eq 'Failed'` means `not (status eq 'Failed')`.
import type { ComparisonOp, FilterExpr, Literal } from '../../../core/query.ts';
import { edmTypeOf, type FieldResolver, type ResolvedField } from './fields.ts';
import { at, invalidQuery } from './invalid.ts';
import { tokenize, type Token } from './lexer.ts';
import { normalizeTimestamp } from '../../../core/time.ts';

export interface FilterLimits {
  /** UTF-8 bytes of the whole $filter value. */
  maxBytes: number;
  /** Parentheses, `not` and `any(…)` bodies, counted together. */
  maxDepth: number;
  maxInItems: number;
}

export const FILTER_LIMITS: FilterLimits = { maxBytes: 8192, maxDepth: 50, maxInItems: 1000 };

const COMPARISON_OPS: ReadonlySet<string> = new Set(['eq', 'ne', 'gt', 'ge', 'lt', 'le']);

/** The live parser's names for the operators, used in its type-mismatch message. */
const OPERATOR_KIND: Record<ComparisonOp, string> = {
  eq: 'Equal',
  ne: 'NotEqual',
  gt: 'GreaterThan',
  ge: 'GreaterThanOrEqual',
  lt: 'LessThan',
  le: 'LessThanOrEqual',
};

/** `5 lt x` is `x gt 5`. */
const MIRRORED: Record<ComparisonOp, ComparisonOp> = { eq: 'eq', ne: 'ne', gt: 'lt', ge: 'le', lt: 'gt', le: 'ge' };

type Operand =
  | { kind: 'field'; field: ResolvedField; pos: number }
  | { kind: 'literal'; literal: Literal; pos: number }
  | { kind: 'predicate'; expr: FilterExpr; pos: number };

export function parseFilter(text: string, fields: FieldResolver, limits: FilterLimits = FILTER_LIMITS): FilterExpr {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > limits.maxBytes) {
    throw invalidQuery(`The $filter value is ${bytes} bytes long; at most ${limits.maxBytes} bytes are allowed.`);
  }
  return new FilterParser(text, tokenize(text), fields, limits).parse();
}

/** Joins operands of one associative operator into a balanced tree, so a long `or` chain stays shallow. */
function balanced(kind: 'and' | 'or', items: FilterExpr[]): FilterExpr {
  if (items.length === 1) return items[0]!;
  const mid = items.length >> 1;
  return { kind, left: balanced(kind, items.slice(0, mid)), right: balanced(kind, items.slice(mid)) };
}

function literalEdmType(lit: Literal): string {
  switch (lit.kind) {
    case 'string':
      return 'Edm.String';
    case 'number':
      return Number.isInteger(lit.value) ? 'Edm.Int32' : 'Edm.Double';
    case 'boolean':
      return 'Edm.Boolean';
    case 'datetime':
      return 'Edm.DateTimeOffset';
    case 'null':
      return 'null';
  }
}

class FilterParser {
  private index = 0;
  private depth = 0;

  constructor(
    private readonly text: string,
    private readonly tokens: Token[],
    private readonly fields: FieldResolver,
    private readonly limits: FilterLimits,
  ) {}

  parse(): FilterExpr {
    const expr = this.parseOr();
    const tok = this.peek();
    if (tok.kind !== 'end') {
      if (tok.kind === 'punct' && tok.text === ')') {
        throw invalidQuery(`Unbalanced parentheses: ')' without a matching '(' ${this.at(tok)}.`);
      }
      throw invalidQuery(`Syntax error: 'and', 'or' or the end of the expression expected ${this.at(tok)}.`);
    }
    return expr;
  }

  // ---- token helpers

  private peek(offset = 0): Token {
    return this.tokens[Math.min(this.index + offset, this.tokens.length - 1)]!;
  }

  private next(): Token {
    const tok = this.peek();
    if (this.index < this.tokens.length - 1) this.index++;
    return tok;
  }

  private at(tok: Token): string {
    return at(tok.pos, this.text);
  }

  private isKeyword(tok: Token, keyword: string): boolean {
    return tok.kind === 'identifier' && tok.text.toLowerCase() === keyword;
  }

  private isPunct(tok: Token, p: string): boolean {
    return tok.kind === 'punct' && tok.text === p;
  }

  private expectPunct(p: '(' | ')' | ',' | ':', context: string): Token {
    const tok = this.next();
    if (this.isPunct(tok, p)) return tok;
    if (p === ')' && tok.kind === 'end') {
      throw invalidQuery(`Unbalanced parentheses: ')' expected ${context} ${this.at(tok)}.`);
    }
    throw invalidQuery(`'${p}' expected ${context} ${this.at(tok)}.`);
  }

  private enter(tok: Token): void {
    if (++this.depth > this.limits.maxDepth) {
      throw invalidQuery(
        `The $filter expression is nested too deeply ${this.at(tok)}; at most ${this.limits.maxDepth} levels of parentheses, 'not' and any() are allowed.`,
      );
    }
  }

  private leave(): void {
    this.depth--;
  }

  // ---- boolean structure

  private parseOr(): FilterExpr {
    const items = [this.parseAnd()];
    while (this.isKeyword(this.peek(), 'or')) {
      this.next();
      items.push(this.parseAnd());
    }
    return balanced('or', items);
  }

  private parseAnd(): FilterExpr {
    const items = [this.parseNot()];
    while (this.isKeyword(this.peek(), 'and')) {
      this.next();
      items.push(this.parseNot());
    }
    return balanced('and', items);
  }

  private parseNot(): FilterExpr {
    const tok = this.peek();
    if (!this.isKeyword(tok, 'not')) return this.parseComparison();
    this.next();
    this.enter(tok);
    const expr = this.parseNot();
    this.leave();
    return { kind: 'not', expr };
  }

  private parseComparison(): FilterExpr {
    const left = this.parseOperand();
    const tok = this.peek();
    if (tok.kind === 'identifier') {
      const word = tok.text.toLowerCase();
      if (COMPARISON_OPS.has(word)) {
        this.next();
        const right = this.parseOperand();
        return this.compare(left, word as ComparisonOp, right, tok);
      }
      if (word === 'in') {
        this.next();
        return this.inList(left, tok);
      }
      if (word === 'has' || word === 'add' || word === 'sub' || word === 'mul' || word === 'div' || word === 'mod') {
        throw invalidQuery(`The operator '${tok.text}' is not supported ${this.at(tok)}.`);
      }
    }
    return this.asCondition(left, tok);
  }

  /** An operand standing alone must itself be true or false. */
  private asCondition(operand: Operand, following: Token): FilterExpr {
    if (operand.kind === 'predicate') return operand.expr;
    if (operand.kind === 'field') {
      if (operand.field.type === 'boolean') {
        return { kind: 'compare', op: 'eq', field: operand.field.name, value: { kind: 'boolean', value: true } };
      }
      throw invalidQuery(
        `A comparison operator (eq, ne, gt, ge, lt, le) or 'in' expected after '${operand.field.name}' ${this.at(following)}.`,
      );
    }
    throw invalidQuery(
      `A literal on its own is not a condition ${at(operand.pos, this.text)}; compare a property with it, e.g. status eq 'Pending'.`,
    );
  }

  // ---- operands

  private parseOperand(): Operand {
    const tok = this.next();
    switch (tok.kind) {
      case 'string':
        return { kind: 'literal', literal: { kind: 'string', value: tok.value }, pos: tok.pos };
      case 'guid':
        return { kind: 'literal', literal: { kind: 'string', value: tok.text }, pos: tok.pos };
      case 'number':
        return { kind: 'literal', literal: { kind: 'number', value: tok.value }, pos: tok.pos };
      case 'datetime':
        return { kind: 'literal', literal: { kind: 'datetime', value: tok.value }, pos: tok.pos };
      case 'identifier': {
        const word = tok.text.toLowerCase();
        if (word === 'true' || word === 'false') {
          return { kind: 'literal', literal: { kind: 'boolean', value: word === 'true' }, pos: tok.pos };
        }
        if (word === 'null') return { kind: 'literal', literal: { kind: 'null' }, pos: tok.pos };
        if (this.isPunct(this.peek(), '(')) return this.parseFunction(tok);
        return this.parseMemberPath(tok);
      }
      case 'punct':
        if (tok.text === '(') {
          this.enter(tok);
          const expr = this.parseOr();
          const close = this.peek();
          if (!this.isPunct(close, ')')) {
            if (close.kind === 'end') {
              throw invalidQuery(`Unbalanced parentheses: ')' expected ${this.at(close)}.`);
            }
            throw invalidQuery(`')' or operator expected ${this.at(close)}.`);
          }
          this.next();
          this.leave();
          return { kind: 'predicate', expr, pos: tok.pos };
        }
        throw invalidQuery(`Expression expected ${this.at(tok)}.`);
      case 'end':
        throw invalidQuery(`Expression expected ${this.at(tok)}.`);
    }
  }

  /** `name`, `relatedFileInfo/fileIdentifier`, or `machineTags/any(t: …)`. */
  private parseMemberPath(first: Token & { kind: 'identifier' }): Operand {
    const segments = [first.text];
    while (this.isPunct(this.peek(), '/')) {
      const seg = this.peek(1);
      if (seg.kind !== 'identifier') {
        this.next();
        throw invalidQuery(`A property name expected after '/' ${this.at(seg)}.`);
      }
      const lower = seg.text.toLowerCase();
      if ((lower === 'any' || lower === 'all') && this.isPunct(this.peek(2), '(')) {
        const field = this.fields.resolve(segments.join('/'));
        this.next();
        this.next();
        return { kind: 'predicate', expr: this.parseLambda(field, seg), pos: first.pos };
      }
      this.next();
      this.next();
      segments.push(seg.text);
    }
    return { kind: 'field', field: this.fields.resolve(segments.join('/')), pos: first.pos };
  }

  private parseFunction(name: Token & { kind: 'identifier' }): Operand {
    if (name.text.toLowerCase() !== 'startswith') {
      throw invalidQuery(
        `The function '${name.text}' is not supported ${this.at(name)}; the only function available is startswith(property,'prefix').`,
      );
    }
    this.expectPunct('(', `after '${name.text}'`);
    const arg = this.next();
    if (arg.kind !== 'identifier' || ['true', 'false', 'null'].includes(arg.text.toLowerCase())) {
      throw invalidQuery(`The first argument of startswith must be a property ${this.at(arg)}.`);
    }
    const operand = this.parseMemberPath(arg);
    if (operand.kind !== 'field' || operand.field.type !== 'string') {
      const what = operand.kind === 'field' ? `'${operand.field.name}' is ${edmTypeOf(operand.field.type)}` : 'it is not one';
      throw invalidQuery(`startswith needs a string property, but ${what}, ${this.at(arg)}.`);
    }
    this.expectPunct(',', 'between the arguments of startswith');
    const prefix = this.next();
    if (prefix.kind !== 'string') {
      throw invalidQuery(`The second argument of startswith must be a quoted string ${this.at(prefix)}.`);
    }
    this.expectPunct(')', 'after the arguments of startswith');
    return {
      kind: 'predicate',
      expr: { kind: 'startswith', field: operand.field.name, value: prefix.value },
      pos: name.pos,
    };
  }

  // ---- any(t: t eq 'x' [or t eq 'y' …])

  private parseLambda(field: ResolvedField, operator: Token & { kind: 'identifier' }): FilterExpr {
    if (operator.text.toLowerCase() === 'all') {
      throw invalidQuery(`The lambda operator 'all' is not supported ${this.at(operator)}; use any.`);
    }
    if (field.type !== 'stringCollection') {
      throw invalidQuery(`'any' needs a collection property, but '${field.name}' is not one, ${this.at(operator)}.`);
    }
    const open = this.expectPunct('(', "after 'any'");
    this.enter(open);
    const variable = this.next();
    if (variable.kind !== 'identifier') {
      throw invalidQuery(
        `A range variable expected ${this.at(variable)}, as in ${field.name}/any(t: t eq 'value'); any() without a condition is not supported.`,
      );
    }
    this.expectPunct(':', 'after the range variable');
    const values = this.parseLambdaOr(variable.text, field);
    const close = this.peek();
    if (!this.isPunct(close, ')')) {
      if (close.kind === 'end') throw invalidQuery(`Unbalanced parentheses: ')' expected ${this.at(close)}.`);
      throw this.lambdaShapeError(close, variable.text, field);
    }
    this.next();
    this.leave();
    return balanced(
      'or',
      values.map((value): FilterExpr => ({ kind: 'any', field: field.name, value })),
    );
  }

  private parseLambdaOr(variable: string, field: ResolvedField): string[] {
    const values = this.parseLambdaTerm(variable, field);
    while (this.isKeyword(this.peek(), 'or')) {
      this.next();
      values.push(...this.parseLambdaTerm(variable, field));
    }
    return values;
  }

  private parseLambdaTerm(variable: string, field: ResolvedField): string[] {
    const tok = this.peek();
    if (this.isPunct(tok, '(')) {
      this.next();
      this.enter(tok);
      const values = this.parseLambdaOr(variable, field);
      const close = this.next();
      if (!this.isPunct(close, ')')) {
        if (close.kind === 'end') throw invalidQuery(`Unbalanced parentheses: ')' expected ${this.at(close)}.`);
        throw this.lambdaShapeError(close, variable, field);
      }
      this.leave();
      return values;
    }
    const left = this.next();
    const op = this.next();
    const right = this.next();
    if (!this.isKeyword(op, 'eq')) throw this.lambdaShapeError(op, variable, field);
    const isVar = (t: Token) => t.kind === 'identifier' && t.text.toLowerCase() === variable.toLowerCase();
    if (isVar(left) && right.kind === 'string') return [right.value];
    if (left.kind === 'string' && isVar(right)) return [left.value];
    throw this.lambdaShapeError(isVar(left) ? right : left, variable, field);
  }

  private lambdaShapeError(tok: Token, variable: string, field: ResolvedField) {
    return invalidQuery(
      `Unsupported condition inside any() ${this.at(tok)}: only ${variable} eq 'value' conditions, joined with or, are supported (e.g. ${field.name}/any(${variable}: ${variable} eq 'a' or ${variable} eq 'b')).`,
    );
  }

  // ---- comparisons and their type checks

  private compare(left: Operand, op: ComparisonOp, right: Operand, opTok: Token): FilterExpr {
    if (left.kind === 'field' && right.kind === 'literal') return this.fieldCompare(left.field, op, right, opTok);
    if (left.kind === 'literal' && right.kind === 'field') return this.fieldCompare(right.field, MIRRORED[op], left, opTok);
    const predicate = left.kind === 'predicate' ? left : right.kind === 'predicate' ? right : null;
    const other = predicate === left ? right : left;
    if (predicate && other.kind === 'literal' && other.literal.kind === 'boolean' && (op === 'eq' || op === 'ne')) {
      return other.literal.value === (op === 'eq') ? predicate.expr : { kind: 'not', expr: predicate.expr };
    }
    if (predicate) {
      throw invalidQuery(
        `A condition can only be compared with true or false using eq or ne ${this.at(opTok)}.`,
      );
    }
    if (left.kind === 'field' && right.kind === 'field') {
      throw invalidQuery(
        `Comparing two properties ('${left.field.name}' and '${right.field.name}') is not supported ${this.at(opTok)}; compare a property with a literal value.`,
      );
    }
    throw invalidQuery(`A comparison needs a property on one side ${this.at(opTok)}.`);
  }

  private fieldCompare(field: ResolvedField, op: ComparisonOp, literal: Operand & { kind: 'literal' }, opTok: Token): FilterExpr {
    return { kind: 'compare', op, field: field.name, value: this.checkLiteral(field, op, literal, opTok) };
  }

  /** The literal as the store should see it, or a precise error when it cannot be compared with the field. */
  private checkLiteral(field: ResolvedField, op: ComparisonOp, operand: Operand & { kind: 'literal' }, opTok: Token): Literal {
    const lit = operand.literal;
    if (field.type === 'stringCollection') {
      throw invalidQuery(
        `'${field.name}' is a collection ${this.at(opTok)}; test its members with ${field.name}/any(t: t eq 'value').`,
      );
    }
    const ordering = op !== 'eq' && op !== 'ne';
    if (lit.kind === 'null') {
      if (ordering) throw invalidQuery(`The operator '${op}' cannot be used with null ${this.at(opTok)}; use eq or ne.`);
      return lit;
    }
    if (ordering && (field.type === 'enum' || field.type === 'boolean')) {
      throw invalidQuery(
        `The operator '${op}' cannot be applied to '${field.name}' ${this.at(opTok)}; it has no order, so use eq, ne or in.`,
      );
    }
    const mismatch = () =>
      invalidQuery(
        `A binary operator with incompatible types was detected. Found operand types '${edmTypeOf(field.type)}' and '${literalEdmType(lit)}' for operator kind '${OPERATOR_KIND[op]}' (property '${field.name}', ${this.at(opTok)}).`,
      );
    switch (field.type) {
      case 'string':
      case 'enum':
        if (lit.kind !== 'string') throw mismatch();
        return lit;
      case 'number':
        if (lit.kind !== 'number') throw mismatch();
        return lit;
      case 'boolean':
        if (lit.kind !== 'boolean') throw mismatch();
        return lit;
      case 'datetime': {
        if (lit.kind === 'datetime') return lit;
        if (lit.kind !== 'string') throw mismatch();
        const value = normalizeTimestamp(lit.value.trim());
        if (value === null) {
          throw invalidQuery(
            `'${lit.value}' is not a valid Edm.DateTimeOffset value for '${field.name}' ${at(operand.pos, this.text)}; use a form such as 2024-01-31T00:00:00Z.`,
          );
        }
        return { kind: 'datetime', value };
      }
    }
  }

  private inList(left: Operand, inTok: Token): FilterExpr {
    if (left.kind !== 'field') {
      throw invalidQuery(`The left side of 'in' must be a property ${this.at(inTok)}.`);
    }
    const field = left.field;
    this.expectPunct('(', "after 'in'");
    const values: Literal[] = [];
    if (this.isPunct(this.peek(), ')')) {
      throw invalidQuery(`The list after 'in' is empty ${this.at(this.peek())}.`);
    }
    for (;;) {
      const operand = this.parseOperand();
      if (operand.kind !== 'literal') {
        throw invalidQuery(`Only literal values may appear in the list after 'in' ${at(operand.pos, this.text)}.`);
      }
      values.push(this.checkLiteral(field, 'eq', operand, inTok));
      if (values.length > this.limits.maxInItems) {
        throw invalidQuery(
          `The list after 'in' has more than ${this.limits.maxInItems} values ${this.at(inTok)}; split the query.`,
        );
      }
      const sep = this.next();
      if (this.isPunct(sep, ')')) break;
      if (!this.isPunct(sep, ',')) {
        if (sep.kind === 'end') throw invalidQuery(`Unbalanced parentheses: ')' expected ${this.at(sep)}.`);
        throw invalidQuery(`')' or ',' expected ${this.at(sep)}.`);
      }
    }
    return { kind: 'in', field: field.name, values };
  }
}
