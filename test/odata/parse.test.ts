// The OData query-option parser and the function-call segment parsers: every operator and literal form, the
// queries real MDE clients send (mde-api.md §10.3), and an error for every kind of bad input.
import assert from 'node:assert/strict';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import Fastify from 'fastify';
import { MdeError, ODataQueryError } from '../../src/core/errors.ts';
import {
  MACHINE_ACTION_FIELDS,
  MACHINE_FIELDS,
  type ComparisonOp,
  type FilterExpr,
  type Literal,
} from '../../src/core/query.ts';
import {
  INVALID_QUERY,
  parseFindByIp,
  parseIndexCall,
  parseListQuery,
} from '../../src/server/mde/odata/index.ts';

const A = MACHINE_ACTION_FIELDS;
const M = MACHINE_FIELDS;

type Query = Record<string, string | string[] | undefined>;

const filterOf = (text: string, fields = A): FilterExpr | null => parseListQuery({ $filter: text }, fields).filter;

const str = (value: string): Literal => ({ kind: 'string', value });
const num = (value: number): Literal => ({ kind: 'number', value });
const dt = (value: string): Literal => ({ kind: 'datetime', value });
const cmp = (field: string, op: ComparisonOp, value: Literal): FilterExpr => ({ kind: 'compare', op, field, value });
const and = (left: FilterExpr, right: FilterExpr): FilterExpr => ({ kind: 'and', left, right });
const or = (left: FilterExpr, right: FilterExpr): FilterExpr => ({ kind: 'or', left, right });
const not = (expr: FilterExpr): FilterExpr => ({ kind: 'not', expr });

/** Asserts an ODataQueryError in the live parser's wording whose message matches `pattern`. */
function rejects(fn: () => unknown, pattern: RegExp | string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ODataQueryError, `expected ODataQueryError, got ${String(err)}`);
    assert.ok(err.message.startsWith(`${INVALID_QUERY} `), err.message);
    if (typeof pattern === 'string') assert.ok(err.message.includes(pattern), `"${err.message}" lacks "${pattern}"`);
    else assert.match(err.message, pattern);
    return true;
  });
}
const rejectsQuery = (q: Query, pattern: RegExp | string, fields = A) => rejects(() => parseListQuery(q, fields), pattern);
const rejectsFilter = (text: string, pattern: RegExp | string, fields = A) =>
  rejects(() => parseListQuery({ $filter: text }, fields), pattern);

function rejectsMde(fn: () => unknown, code: string, pattern: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof MdeError, `expected MdeError, got ${String(err)}`);
    assert.equal(err.status, 400);
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

function depthOf(e: FilterExpr): number {
  switch (e.kind) {
    case 'and':
    case 'or':
      return 1 + Math.max(depthOf(e.left), depthOf(e.right));
    case 'not':
      return 1 + depthOf(e.expr);
    default:
      return 1;
  }
}

function leaves(e: FilterExpr): FilterExpr[] {
  if (e.kind === 'and' || e.kind === 'or') return [...leaves(e.left), ...leaves(e.right)];
  return [e];
}

describe('defaults and plain options', () => {
  it('an empty query is top 10000, skip 0, no order, no count, no filter', () => {
    assert.deepEqual(parseListQuery({}, A), {
      filter: null,
      orderBy: [],
      top: 10000,
      skip: 0,
      count: false,
      topSpecified: false,
    });
  });

  it('defaultTop applies only when $top is absent', () => {
    assert.equal(parseListQuery({}, A, { defaultTop: 100 }).top, 100);
    assert.equal(parseListQuery({ $top: '7' }, A, { defaultTop: 100 }).top, 7);
    assert.equal(parseListQuery({}, A, { defaultTop: 50_000 }).top, 10000);
  });

  it('$top accepts 0 through 10000 and records that it was given', () => {
    for (const [text, value] of [['0', 0], ['1', 1], ['10000', 10000], ['00010', 10], [' 25 ', 25]] as const) {
      const q = parseListQuery({ $top: text }, A);
      assert.equal(q.top, value);
      assert.equal(q.topSpecified, true);
    }
  });

  it('$skip accepts non-negative integers up to the Int32 bound', () => {
    assert.equal(parseListQuery({ $skip: '0' }, A).skip, 0);
    assert.equal(parseListQuery({ $skip: '10000' }, A).skip, 10000);
    assert.equal(parseListQuery({ $skip: '2147483647' }, A).skip, 2147483647);
  });

  it('$count is true or false, in any case', () => {
    assert.equal(parseListQuery({ $count: 'true' }, A).count, true);
    assert.equal(parseListQuery({ $count: 'True' }, A).count, true);
    assert.equal(parseListQuery({ $count: 'false' }, A).count, false);
  });

  it('$orderby takes comma-separated fields with optional asc/desc, canonical names', () => {
    assert.deepEqual(parseListQuery({ $orderby: 'creationDateTimeUtc desc' }, A).orderBy, [
      { field: 'creationDateTimeUtc', direction: 'desc' },
    ]);
    assert.deepEqual(parseListQuery({ $orderby: 'STATUS ASC,  machineid,type   Desc ' }, A).orderBy, [
      { field: 'status', direction: 'asc' },
      { field: 'machineId', direction: 'asc' },
      { field: 'type', direction: 'desc' },
    ]);
    assert.deepEqual(parseListQuery({ $orderby: 'relatedFileInfo/fileIdentifier desc' }, A).orderBy, [
      { field: 'fileIdentifier', direction: 'desc' },
    ]);
  });

  it('$select returns canonical names in the given order, deduplicated; * means everything', () => {
    assert.deepEqual(parseListQuery({ $select: 'ID, Status,id' }, A).select, ['id', 'status']);
    assert.equal(parseListQuery({ $select: '*' }, A).select, undefined);
    assert.equal(parseListQuery({ $select: 'id,*' }, A).select, undefined);
    assert.equal('select' in parseListQuery({}, A), false);
    const selectable = ['id', 'osArchitecture', 'ipAddresses'];
    assert.deepEqual(parseListQuery({ $select: 'osarchitecture,IPADDRESSES' }, M, { selectable }).select, [
      'osArchitecture',
      'ipAddresses',
    ]);
  });

  it('$format=json is accepted as a no-op', () => {
    assert.equal(parseListQuery({ $format: 'json' }, A).filter, null);
    assert.equal(parseListQuery({ $format: 'application/json;odata.metadata=minimal' }, A).filter, null);
  });

  it('parameters without $ are ignored (cache busters), as are undefined values', () => {
    const q = parseListQuery({ _: '1699999999', nocache: ['a', 'b'], foo: 'bar', $top: undefined, $skip: [] }, A);
    assert.equal(q.top, 10000);
    assert.equal(q.topSpecified, false);
  });

  it('system query option names match case-insensitively and a still-encoded %24 prefix is understood', () => {
    assert.equal(parseListQuery({ $TOP: '5' }, A).top, 5);
    assert.equal(parseListQuery({ '%24top': '6' }, A).top, 6);
    assert.deepEqual(parseListQuery({ '%24filter': "id eq 'a'" }, A).filter, cmp('id', 'eq', str('a')));
  });
});

describe('$filter operators', () => {
  it('every comparison operator', () => {
    for (const op of ['eq', 'ne', 'gt', 'ge', 'lt', 'le'] as const) {
      assert.deepEqual(filterOf(`errorHResult ${op} 5`), cmp('errorHResult', op, num(5)));
      assert.deepEqual(filterOf(`requestor ${op} 'b'`), cmp('requestor', op, str('b')));
    }
  });

  it('operators and keywords in any case', () => {
    assert.deepEqual(
      filterOf("status Eq 'Pending' AND type EQ 'Isolate' Or NOT id nE 'x'"),
      or(and(cmp('status', 'eq', str('Pending')), cmp('type', 'eq', str('Isolate'))), not(cmp('id', 'ne', str('x')))),
    );
  });

  it('property names are case-insensitive and come back canonical', () => {
    assert.deepEqual(filterOf("MACHINEID eq 'a'"), cmp('machineId', 'eq', str('a')));
    assert.deepEqual(filterOf("CreationDateTimeUtc gt 2024-01-01Z"), cmp('creationDateTimeUtc', 'gt', dt('2024-01-01T00:00:00.0000000Z')));
    assert.deepEqual(filterOf("computerdnsname eq 'pc1'", M), cmp('computerDnsName', 'eq', str('pc1')));
  });

  it('relatedFileInfo/fileIdentifier and lastUpdateTimeUtc resolve to the action fields', () => {
    const sha1 = '87662bc3d60e4200ceaf7aae249d1c343f4b83c9';
    assert.deepEqual(filterOf(`relatedFileInfo/fileIdentifier eq '${sha1}'`), cmp('fileIdentifier', 'eq', str(sha1)));
    assert.deepEqual(filterOf(`RelatedFileInfo/FileIdentifier eq '${sha1}'`), cmp('fileIdentifier', 'eq', str(sha1)));
    assert.deepEqual(filterOf(`fileIdentifier eq '${sha1}'`), cmp('fileIdentifier', 'eq', str(sha1)));
    assert.deepEqual(
      filterOf('lastUpdateTimeUtc ge 2024-01-01Z'),
      cmp('lastUpdateDateTimeUtc', 'ge', dt('2024-01-01T00:00:00.0000000Z')),
    );
    rejectsFilter("relatedFileInfo/fileIdentifier eq 'x'", "Could not find a property named 'relatedFileInfo/fileIdentifier' on type 'Machine'", M);
  });

  it('a literal on the left mirrors the operator', () => {
    assert.deepEqual(filterOf('5 lt errorHResult'), cmp('errorHResult', 'gt', num(5)));
    assert.deepEqual(filterOf('5 ge errorHResult'), cmp('errorHResult', 'le', num(5)));
    assert.deepEqual(filterOf("'Pending' eq status"), cmp('status', 'eq', str('Pending')));
  });

  it('in with one or many values', () => {
    assert.deepEqual(filterOf("machineId in ('a')"), { kind: 'in', field: 'machineId', values: [str('a')] });
    assert.deepEqual(filterOf("machineId IN ( 'a' , 'b','c' )"), {
      kind: 'in',
      field: 'machineId',
      values: [str('a'), str('b'), str('c')],
    });
    assert.deepEqual(filterOf('errorHResult in (0, -1, null)'), {
      kind: 'in',
      field: 'errorHResult',
      values: [num(0), num(-1), { kind: 'null' }],
    });
  });

  it('startswith, also compared with true or false', () => {
    const sw: FilterExpr = { kind: 'startswith', field: 'computerDnsName', value: 'mymachine' };
    assert.deepEqual(filterOf("startswith(computerDnsName,'mymachine')", M), sw);
    assert.deepEqual(filterOf("StartsWith( ComputerDnsName , 'mymachine' )", M), sw);
    assert.deepEqual(filterOf("startswith(computerDnsName,'mymachine') eq true", M), sw);
    assert.deepEqual(filterOf("startswith(computerDnsName,'mymachine') eq false", M), not(sw));
    assert.deepEqual(filterOf("false ne startswith(computerDnsName,'mymachine')", M), sw);
  });

  it('machineTags/any in its spellings', () => {
    const tag = (value: string): FilterExpr => ({ kind: 'any', field: 'machineTags', value });
    assert.deepEqual(filterOf("machineTags/any(t: t eq 'x')", M), tag('x'));
    assert.deepEqual(filterOf("machineTags/any(t:t eq 'x')", M), tag('x'));
    assert.deepEqual(filterOf("MachineTags/ANY(tag: 'x' eq tag)", M), tag('x'));
    assert.deepEqual(filterOf("machineTags/any(t: t eq 'a' or (t eq 'b'))", M), or(tag('a'), tag('b')));
    assert.deepEqual(filterOf("not machineTags/any(t: t eq 'it''s')", M), not(tag("it's")));
  });

  it('a boolean property alone is a condition', () => {
    const joined = cmp('isAadJoined', 'eq', { kind: 'boolean', value: true });
    assert.deepEqual(filterOf('isAadJoined', M), joined);
    assert.deepEqual(filterOf('not isAadJoined', M), not(joined));
    assert.deepEqual(filterOf('isAadJoined eq false', M), cmp('isAadJoined', 'eq', { kind: 'boolean', value: false }));
  });

  it('null with eq and ne', () => {
    assert.deepEqual(filterOf('requestor eq null'), cmp('requestor', 'eq', { kind: 'null' }));
    assert.deepEqual(filterOf('aadDeviceId ne NULL', M), cmp('aadDeviceId', 'ne', { kind: 'null' }));
    assert.deepEqual(filterOf('creationDateTimeUtc eq null'), cmp('creationDateTimeUtc', 'eq', { kind: 'null' }));
  });
});

describe('$filter literals', () => {
  it("strings: '' escapes a quote, empty strings and any characters survive", () => {
    assert.deepEqual(filterOf("requestor eq 'O''Brien'"), cmp('requestor', 'eq', str("O'Brien")));
    assert.deepEqual(filterOf("requestor eq ''"), cmp('requestor', 'eq', str('')));
    assert.deepEqual(filterOf("requestor eq ''''"), cmp('requestor', 'eq', str("'")));
    assert.deepEqual(filterOf("requestor eq 'a and b or (c)'"), cmp('requestor', 'eq', str('a and b or (c)')));
    assert.deepEqual(filterOf("requestor eq 'ünï €'"), cmp('requestor', 'eq', str('ünï €')));
  });

  it('numbers: integers, negatives, decimals, exponents', () => {
    assert.deepEqual(filterOf('errorHResult eq 0'), cmp('errorHResult', 'eq', num(0)));
    assert.deepEqual(filterOf('errorHResult eq -2147024894'), cmp('errorHResult', 'eq', num(-2147024894)));
    assert.deepEqual(filterOf('errorHResult lt 1.5'), cmp('errorHResult', 'lt', num(1.5)));
    assert.deepEqual(filterOf('osBuild ge 1.9e4', M), cmp('osBuild', 'ge', num(19000)));
  });

  it('booleans in any case', () => {
    assert.deepEqual(filterOf('isAadJoined eq TRUE', M), cmp('isAadJoined', 'eq', { kind: 'boolean', value: true }));
    assert.deepEqual(filterOf('isAadJoined ne False', M), cmp('isAadJoined', 'ne', { kind: 'boolean', value: false }));
  });

  it('unquoted dates and date-times, normalized to the stored form', () => {
    const cases: Array<[string, string]> = [
      ['2019-11-22T00:00:00Z', '2019-11-22T00:00:00.0000000Z'],
      ['2018-08-01Z', '2018-08-01T00:00:00.0000000Z'],
      ['2018-08-01', '2018-08-01T00:00:00.0000000Z'],
      ['2024-05-06T07:08:09.1234567Z', '2024-05-06T07:08:09.1234567Z'],
      ['2024-05-06T07:08:09.123456789Z', '2024-05-06T07:08:09.1234567Z'],
      ['2024-05-06T07:08:09.5z', '2024-05-06T07:08:09.5000000Z'],
      ['2024-05-06T07:08Z', '2024-05-06T07:08:00.0000000Z'],
      ['2024-01-01T10:00:00+02:00', '2024-01-01T08:00:00.0000000Z'],
      ['2024-01-01T10:00:00-05:30', '2024-01-01T15:30:00.0000000Z'],
      // `+02:00` sent unencoded arrives with the plus decoded to a space.
      ['2024-01-01T10:00:00.12 02:00', '2024-01-01T08:00:00.1200000Z'],
      ['2024-01-01T00:30:00+01:00', '2023-12-31T23:30:00.0000000Z'],
    ];
    for (const [text, stored] of cases) {
      assert.deepEqual(filterOf(`lastSeen gt ${text}`, M), cmp('lastSeen', 'gt', dt(stored)), text);
    }
    assert.deepEqual(
      filterOf('lastSeen gt 2024-01-01T10:00:00 02:00 and osBuild eq 1', M),
      and(cmp('lastSeen', 'gt', dt('2024-01-01T08:00:00.0000000Z')), cmp('osBuild', 'eq', num(1))),
    );
  });

  it('a quoted date compared with a date-time field is accepted and normalized', () => {
    assert.deepEqual(filterOf("creationDateTimeUtc gt '2024-01-01'"), cmp('creationDateTimeUtc', 'gt', dt('2024-01-01T00:00:00.0000000Z')));
    assert.deepEqual(
      filterOf("creationDateTimeUtc le '2024-01-01T12:00:00.5+01:00'"),
      cmp('creationDateTimeUtc', 'le', dt('2024-01-01T11:00:00.5000000Z')),
    );
    assert.deepEqual(
      filterOf("creationDateTimeUtc in ('2024-01-01', 2024-01-02Z)"),
      { kind: 'in', field: 'creationDateTimeUtc', values: [dt('2024-01-01T00:00:00.0000000Z'), dt('2024-01-02T00:00:00.0000000Z')] },
    );
  });

  it('an unquoted GUID is a string literal', () => {
    const id = '7f3c1b9a-2d4e-4f60-8a1b-0c2d3e4f5a6b';
    assert.deepEqual(filterOf(`id eq ${id}`), cmp('id', 'eq', str(id)));
    assert.deepEqual(filterOf(`id eq ${id.toUpperCase()}`), cmp('id', 'eq', str(id.toUpperCase())));
    const digitsFirst = '1e5b3c2d-0000-4000-8000-000000000001';
    assert.deepEqual(filterOf(`id in (${digitsFirst})`), { kind: 'in', field: 'id', values: [str(digitsFirst)] });
  });
});

describe('$filter precedence and structure', () => {
  const a = cmp('status', 'eq', str('a'));
  const b = cmp('status', 'eq', str('b'));
  const c = cmp('status', 'eq', str('c'));

  it('and binds tighter than or', () => {
    assert.deepEqual(filterOf("status eq 'a' or status eq 'b' and status eq 'c'"), or(a, and(b, c)));
    assert.deepEqual(filterOf("status eq 'a' and status eq 'b' or status eq 'c'"), or(and(a, b), c));
  });

  it('not binds tighter than and, and applies to the comparison that follows', () => {
    assert.deepEqual(filterOf("not status eq 'a' and status eq 'b'"), and(not(a), b));
    assert.deepEqual(filterOf("not (status eq 'a' or status eq 'b')"), not(or(a, b)));
    assert.deepEqual(filterOf("not not status eq 'a'"), not(not(a)));
    assert.deepEqual(filterOf("not(status eq 'a')"), not(a));
  });

  it('parentheses override precedence and may be redundant', () => {
    assert.deepEqual(filterOf("(status eq 'a' or status eq 'b') and status eq 'c'"), and(or(a, b), c));
    assert.deepEqual(filterOf("((((status eq 'a'))))"), a);
    assert.deepEqual(filterOf("  status   eq\t'a'  "), a);
  });

  it('a long or-chain becomes a balanced tree with every term in order', () => {
    const ids = Array.from({ length: 500 }, (_, i) => `m${i}`);
    const expr = filterOf(ids.map((id) => `id eq '${id}'`).join(' or '))!;
    assert.ok(depthOf(expr) <= 10, `depth ${depthOf(expr)}`);
    assert.deepEqual(
      leaves(expr).map((e) => (e.kind === 'compare' && e.value.kind === 'string' ? e.value.value : null)),
      ids,
    );
  });
});

describe('queries real clients send (mde-api.md §10.3, §8.2)', () => {
  it('XSOAR / R7: status, machineId and type joined with and', () => {
    const q = parseListQuery(
      { $filter: "status eq 'Pending' and machineId eq '1e5bc9d7e413ddd7902c2932e418702b84d0cc07' and type eq 'StopAndQuarantineFile'" },
      A,
    );
    assert.deepEqual(
      leaves(q.filter!),
      [
        cmp('status', 'eq', str('Pending')),
        cmp('machineId', 'eq', str('1e5bc9d7e413ddd7902c2932e418702b84d0cc07')),
        cmp('type', 'eq', str('StopAndQuarantineFile')),
      ],
    );
    assert.equal(q.filter!.kind, 'and');
  });

  it("XSOAR / R7: machines by computerDnsName and riskScore, with $top", () => {
    const q = parseListQuery({ $filter: "computerDnsName eq 'pc1' and riskScore eq 'High'", $top: '100' }, M);
    assert.deepEqual(q.filter, and(cmp('computerDnsName', 'eq', str('pc1')), cmp('riskScore', 'eq', str('High'))));
    assert.equal(q.top, 100);
  });

  it('R7: $top=10000; XSOAR and R7 connection tests: $top=1', () => {
    assert.equal(parseListQuery({ $top: '10000' }, M).top, 10000);
    assert.equal(parseListQuery({ $top: '1' }, A).top, 1);
  });

  it('Cortex: raw $filter on computerDnsName', () => {
    assert.deepEqual(
      parseListQuery({ $filter: "computerDnsName eq 'pc1.contoso.local'" }, M).filter,
      cmp('computerDnsName', 'eq', str('pc1.contoso.local')),
    );
  });

  it('Kibana: in (…) joined with upper-case AND, $count, $orderby, $top, $skip', () => {
    const q = parseListQuery(
      {
        $filter: "machineId in ('a','b') AND type in ('Isolate')",
        $count: 'true',
        $orderby: 'creationDateTimeUtc desc',
        $top: '20',
        $skip: '40',
      },
      A,
    );
    assert.deepEqual(
      q.filter,
      and(
        { kind: 'in', field: 'machineId', values: [str('a'), str('b')] },
        { kind: 'in', field: 'type', values: [str('Isolate')] },
      ),
    );
    assert.equal(q.count, true);
    assert.deepEqual(q.orderBy, [{ field: 'creationDateTimeUtc', direction: 'desc' }]);
    assert.equal(q.top, 20);
    assert.equal(q.skip, 40);
  });

  it("current XSOAR: or-joined parenthesized groups", () => {
    const expr = filterOf(
      "(machineId eq 'a' and status eq 'Pending') or (machineId eq 'b' and status eq 'Pending')",
    );
    assert.deepEqual(
      expr,
      or(
        and(cmp('machineId', 'eq', str('a')), cmp('status', 'eq', str('Pending'))),
        and(cmp('machineId', 'eq', str('b')), cmp('status', 'eq', str('Pending'))),
      ),
    );
  });

  it('documentation samples: riskScore, healthStatus ne with $top, lastSeen date, startswith', () => {
    assert.deepEqual(filterOf("riskScore eq 'High'", M), cmp('riskScore', 'eq', str('High')));
    const q = parseListQuery({ $filter: "healthStatus ne 'Active'", $top: '100' }, M);
    assert.deepEqual(q.filter, cmp('healthStatus', 'ne', str('Active')));
    assert.equal(q.top, 100);
    assert.deepEqual(filterOf('lastSeen gt 2018-08-01Z', M), cmp('lastSeen', 'gt', dt('2018-08-01T00:00:00.0000000Z')));
    assert.deepEqual(filterOf("startswith(computerDnsName,'mymachine')", M), {
      kind: 'startswith',
      field: 'computerDnsName',
      value: 'mymachine',
    });
    assert.deepEqual(
      filterOf('creationDateTimeUtc ge 2019-11-22T00:00:00Z'),
      cmp('creationDateTimeUtc', 'ge', dt('2019-11-22T00:00:00.0000000Z')),
    );
    assert.deepEqual(
      filterOf("Status eq 'Pending' and MachineId eq 'x' and Type eq 'Isolate' and Requestor eq 'r'"),
      and(
        and(cmp('status', 'eq', str('Pending')), cmp('machineId', 'eq', str('x'))),
        and(cmp('type', 'eq', str('Isolate')), cmp('requestor', 'eq', str('r'))),
      ),
    );
  });
});

describe('bad $filter input', () => {
  it('unbalanced parentheses', () => {
    rejectsFilter("(status eq 'a'", "Unbalanced parentheses: ')' expected at position 14");
    rejectsFilter("status eq 'a')", "')' without a matching '(' at position 13");
    rejectsFilter("((status eq 'a')", "Unbalanced parentheses: ')' expected");
    rejectsFilter("machineId in ('a','b'", "Unbalanced parentheses: ')' expected");
    rejectsFilter("startswith(computerDnsName,'x'", "')' expected after the arguments of startswith", M);
    rejectsFilter("machineTags/any(t: t eq 'x'", "Unbalanced parentheses: ')' expected", M);
  });

  it('unknown fields, naming the type and what exists', () => {
    rejectsFilter("foo eq 'a'", /Could not find a property named 'foo' on type 'MachineAction'\. Properties that can be used here: id, status, /);
    rejectsFilter("riskScore eq 'High'", "on type 'MachineAction'");
    rejectsFilter("requestorComment eq 'x'", "named 'requestorComment'");
    rejectsFilter("relatedFileInfo/fileIdentifierType eq 'Sha1'", "named 'relatedFileInfo/fileIdentifierType'");
    rejectsFilter("constructor eq 'x'", "named 'constructor'");
    rejectsFilter("__proto__ eq 'x'", "named '__proto__'");
    rejectsFilter("toString eq 'x'", "named 'toString'", M);
    assert.throws(
      () => parseListQuery({ $filter: "foo eq 'a'" }, A, { entityType: 'Custom' }),
      /on type 'Custom'/,
    );
  });

  it('literals of the wrong type for the field', () => {
    rejectsFilter("errorHResult eq 'x'", "Found operand types 'Edm.Int64' and 'Edm.String' for operator kind 'Equal' (property 'errorHResult'");
    rejectsFilter('status eq 5', "Found operand types 'Edm.String' and 'Edm.Int32' for operator kind 'Equal'");
    rejectsFilter('requestor gt 1.5', "'Edm.Double' for operator kind 'GreaterThan'");
    rejectsFilter('machineId eq 2024-01-01Z', "'Edm.String' and 'Edm.DateTimeOffset'");
    rejectsFilter('isAadJoined eq 1', "'Edm.Boolean' and 'Edm.Int32'", M);
    rejectsFilter('creationDateTimeUtc gt 5', "'Edm.DateTimeOffset' and 'Edm.Int32' for operator kind 'GreaterThan'");
    rejectsFilter('creationDateTimeUtc gt true', "'Edm.DateTimeOffset' and 'Edm.Boolean'");
    rejectsFilter("creationDateTimeUtc gt 'yesterday'", "'yesterday' is not a valid Edm.DateTimeOffset value for 'creationDateTimeUtc' at position 23 in 'creationDateTimeUtc gt 'yesterday''; use a form such as");
    rejectsFilter("creationDateTimeUtc gt '2024-02-30'", "'2024-02-30' is not a valid Edm.DateTimeOffset");
    rejectsFilter("machineId in ('a', 5)", "'Edm.String' and 'Edm.Int32'");
    rejectsFilter("osBuild in (1, '2')", "'Edm.Int64' and 'Edm.String'", M);
  });

  it('malformed literals', () => {
    rejectsFilter('errorHResult eq 12abc', "'12abc' is not a valid number at position 16");
    rejectsFilter('errorHResult eq 1.2.3', "'1.2.3' is not a valid number");
    rejectsFilter('errorHResult eq 1.', "'1.' is not a valid number");
    rejectsFilter('errorHResult eq 1e400', "The number '1e400' is out of range at position 16");
    rejectsFilter('errorHResult eq 99999999999999999999', 'is out of range');
    rejectsFilter('lastSeen gt 2024-13-45T00:00:00Z', "Unrecognized 'Edm.DateTimeOffset' literal '2024-13-45T00:00:00Z' at position 12", M);
    rejectsFilter('lastSeen gt 2024-01-01T10', "Unrecognized 'Edm.DateTimeOffset' literal '2024-01-01T10'", M);
    rejectsFilter('lastSeen gt 2024-01-01T10:00:00.1234567890Z', "Unrecognized 'Edm.DateTimeOffset' literal", M);
    rejectsFilter('lastSeen gt 2024-01-01T25:00:00Z', "Unrecognized 'Edm.DateTimeOffset' literal", M);
    rejectsFilter('lastSeen gt 2024-01-01Zfoo', "Unrecognized 'Edm.DateTimeOffset' literal '2024-01-01Zfoo'", M);
    rejectsFilter('lastSeen gt 2024-01', "Unrecognized 'Edm.DateTimeOffset' literal '2024-01'", M);
    // Days that do not exist are refused rather than rolled over into the next month or day.
    for (const bad of ['2023-02-29Z', '2024-04-31Z', '2024-02-30T00:00:00Z', '2024-01-01T24:00:00Z', '2024-00-10Z']) {
      rejectsFilter(`lastSeen gt ${bad}`, `Unrecognized 'Edm.DateTimeOffset' literal '${bad}'`, M);
    }
    assert.deepEqual(filterOf('lastSeen gt 2024-02-29Z', M), cmp('lastSeen', 'gt', dt('2024-02-29T00:00:00.0000000Z')));
  });

  it('unterminated strings', () => {
    rejectsFilter("status eq 'Pending", "Unterminated string literal at position 10 in 'status eq 'Pending'");
    rejectsFilter("status eq 'it''s", 'Unterminated string literal at position 10');
    rejectsFilter("status eq '", 'Unterminated string literal');
  });

  it('trailing garbage and missing pieces', () => {
    rejectsFilter("status eq 'a' status eq 'b'", "Syntax error: 'and', 'or' or the end of the expression expected at position 14");
    rejectsFilter("status eq 'a' and", 'Expression expected at position 17');
    rejectsFilter("status eq 'a' or", 'Expression expected at position 16');
    rejectsFilter('status eq', 'Expression expected at position 9');
    rejectsFilter("and status eq 'a'", "Could not find a property named 'and'");
    rejectsFilter("status eq 'a' eq 'b'", "Syntax error: 'and', 'or' or the end of the expression expected at position 14");
    rejectsFilter('()', 'Expression expected at position 1');
    rejectsFilter("(status eq 'a' 'b')", "')' or operator expected at position 15");
    rejectsFilter("status 'a'", "A comparison operator (eq, ne, gt, ge, lt, le) or 'in' expected after 'status' at position 7");
    rejectsFilter('status', "A comparison operator (eq, ne, gt, ge, lt, le) or 'in' expected after 'status' at position 6");
    rejectsFilter("status eq 'a',", "Syntax error: 'and', 'or' or the end of the expression expected at position 13");
    rejectsFilter('not', 'Expression expected at position 3');
  });

  it('characters and operators that are not OData', () => {
    rejectsFilter("status = 'a'", "character '=' is not valid at position 7");
    rejectsFilter("status eq 'a' && id eq 'b'", "character '&' is not valid at position 14");
    rejectsFilter('status eq "a"', `character '"' is not valid at position 10`);
    rejectsFilter("status eq 'a';", "character ';' is not valid");
    rejectsFilter('osBuild add 1 eq 2', "The operator 'add' is not supported", M);
    rejectsFilter("type has 'Isolate'", "The operator 'has' is not supported");
    rejectsFilter("machineId eq 'a'/b", 'is not valid');
  });

  it('literals and properties in the wrong places', () => {
    rejectsFilter("'a' eq 'b'", 'A comparison needs a property on one side at position 4');
    rejectsFilter('true', 'A literal on its own is not a condition at position 0');
    rejectsFilter('machineId eq computerDnsName', "Comparing two properties ('machineId' and 'computerDnsName') is not supported");
    rejectsFilter("(status eq 'a') eq 'b'", 'A condition can only be compared with true or false');
    rejectsFilter("startswith(computerDnsName,'x') gt true", 'A condition can only be compared with true or false', M);
    rejectsFilter("'a' in ('a')", "The left side of 'in' must be a property");
    rejectsFilter("machineId in (status eq 'a')", "Only literal values may appear in the list after 'in'");
    rejectsFilter("machineId in 'a'", "'(' expected after 'in' at position 13");
    rejectsFilter('machineId in ()', "The list after 'in' is empty at position 14");
    rejectsFilter("machineId in ('a' 'b')", "')' or ',' expected at position 18");
  });

  it('operators that do not fit the field', () => {
    rejectsFilter("status gt 'Pending'", "The operator 'gt' cannot be applied to 'status'");
    rejectsFilter('isAadJoined lt true', "The operator 'lt' cannot be applied to 'isAadJoined'", M);
    rejectsFilter('requestor gt null', "The operator 'gt' cannot be used with null");
    rejectsFilter("machineTags eq 'x'", "'machineTags' is a collection", M);
    rejectsFilter("machineTags in ('x')", "'machineTags' is a collection", M);
  });

  it('functions and lambdas beyond startswith and any(t: t eq …)', () => {
    rejectsFilter("contains(computerDnsName,'x')", "The function 'contains' is not supported at position 0", M);
    rejectsFilter("tolower(computerDnsName) eq 'x'", "The function 'tolower' is not supported", M);
    rejectsFilter("startswith('x',computerDnsName)", 'The first argument of startswith must be a property', M);
    rejectsFilter("startswith(osBuild,'1')", "startswith needs a string property, but 'osBuild' is Edm.Int64, at position 11", M);
    rejectsFilter("startswith(riskScore,'H')", "but 'riskScore' is Edm.String", M);
    rejectsFilter('startswith(computerDnsName,5)', 'The second argument of startswith must be a quoted string', M);
    rejectsFilter("startswith(computerDnsName 'x')", "',' expected between the arguments of startswith", M);
    rejectsFilter("machineTags/all(t: t eq 'x')", "The lambda operator 'all' is not supported", M);
    rejectsFilter('machineTags/any()', 'any() without a condition is not supported', M);
    rejectsFilter("machineTags/any(t t eq 'x')", "':' expected after the range variable", M);
    rejectsFilter("machineTags/any(t: t ne 'x')", "only t eq 'value' conditions, joined with or, are supported", M);
    rejectsFilter("machineTags/any(t: t eq 'x' and t eq 'y')", 'Unsupported condition inside any()', M);
    rejectsFilter("machineTags/any(t: u eq 'x')", 'Unsupported condition inside any()', M);
    rejectsFilter('machineTags/any(t: t eq 5)', 'Unsupported condition inside any()', M);
    rejectsFilter("computerDnsName/any(t: t eq 'x')", "'any' needs a collection property, but 'computerDnsName' is not one", M);
    rejectsFilter("machineTags/ 'x'", "A property name expected after '/' at position 13", M);
  });

  it('too long, too deep, too many values', () => {
    const long = `requestor eq '${'a'.repeat(8192)}'`;
    rejectsFilter(long, /The \$filter value is 8207 bytes long; at most 8192 bytes are allowed/);
    // Multi-byte characters count as bytes.
    rejectsFilter(`requestor eq '${'€'.repeat(2731)}'`, 'bytes long; at most 8192');
    assert.ok(filterOf(`requestor eq '${'a'.repeat(8000)}'`));

    const nested = (n: number) => `${'('.repeat(n)}status eq 'a'${')'.repeat(n)}`;
    assert.ok(filterOf(nested(50)));
    rejectsFilter(nested(51), 'nested too deeply at position 50');
    rejectsFilter(nested(3000), 'at most 50 levels');
    rejectsFilter(`${'not '.repeat(51)}status eq 'a'`, 'nested too deeply');
    assert.ok(filterOf(`${'not '.repeat(50)}status eq 'a'`));
    rejectsFilter(`${'not ('.repeat(30)}status eq 'a'${')'.repeat(30)}`, 'nested too deeply');

    const list = (n: number) => `errorHResult in (${Array.from({ length: n }, (_, i) => i).join(',')})`;
    assert.equal((filterOf(list(1000)) as { values: Literal[] }).values.length, 1000);
    rejectsFilter(list(1001), "The list after 'in' has more than 1000 values at position 13 near '");
  });

  it('never fails with anything but ODataQueryError, whatever the input', () => {
    // A deterministic stream of token soup: no input may escape as a TypeError, RangeError or stack overflow.
    const parts = [
      'status', 'machineId', 'machineTags', 'isAadJoined', 'lastSeen', 'osBuild', 'eq', 'ne', 'gt', 'and', 'or', 'not',
      'in', '(', ')', ',', '/', ':', "'x'", "'", "''", '5', '-1', '1.5', 'true', 'null', '2024-01-01Z', 'any', 'all',
      'startswith', 't', ' ', '=', '"', '%', '\u0000', '\u{1F600}', 'constructor', '__proto__',
    ];
    let seed = 0x9e3779b9;
    const rand = (n: number) => {
      seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
      return seed % n;
    };
    for (let i = 0; i < 4000; i++) {
      const len = 1 + rand(14);
      let text = '';
      for (let j = 0; j < len; j++) text += parts[rand(parts.length)] + (rand(3) ? ' ' : '');
      for (const fields of [A, M]) {
        try {
          parseListQuery({ $filter: text }, fields);
        } catch (err) {
          assert.ok(err instanceof ODataQueryError, `${JSON.stringify(text)} → ${String(err)}`);
          assert.ok(err.message.startsWith(INVALID_QUERY));
        }
      }
    }
  });
});

describe('bad query options', () => {
  it('$top out of range or not an integer', () => {
    rejectsQuery({ $top: '10001' }, "The limit of '10000' for Top query has been exceeded. The value from the incoming request is '10001'.");
    rejectsQuery({ $top: '99999999999999999999999' }, "The value from the incoming request is '99999999999999999999999'");
    rejectsQuery({ $top: '-1' }, "Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value.");
    rejectsQuery({ $top: 'abc' }, "Invalid value 'abc' for $top query option found.");
    rejectsQuery({ $top: '1.5' }, "Invalid value '1.5' for $top");
    rejectsQuery({ $top: '1e3' }, "Invalid value '1e3' for $top");
    rejectsQuery({ $top: '0x10' }, "Invalid value '0x10' for $top");
  });

  it('$skip negative, not an integer or beyond Int32', () => {
    rejectsQuery({ $skip: '-1' }, "Invalid value '-1' for $skip query option found. The $skip query option requires a non-negative integer value.");
    rejectsQuery({ $skip: 'ten' }, "Invalid value 'ten' for $skip");
    rejectsQuery({ $skip: '2147483648' }, "The limit of '2147483647' for Skip query has been exceeded");
  });

  it('$orderby with unknown fields, bad directions, collections, duplicates or empty items', () => {
    rejectsQuery({ $orderby: 'foo desc' }, "Could not find a property named 'foo' on type 'MachineAction'");
    rejectsQuery({ $orderby: 'lastSeen desc' }, "Could not find a property named 'lastSeen'");
    rejectsQuery({ $orderby: 'creationDateTimeUtc sideways' }, "Syntax error in $orderby 'creationDateTimeUtc sideways'");
    rejectsQuery({ $orderby: 'status asc desc' }, 'Syntax error in $orderby');
    rejectsQuery({ $orderby: 'status,' }, 'Syntax error in $orderby');
    rejectsQuery({ $orderby: ',status' }, 'Syntax error in $orderby');
    rejectsQuery({ $orderby: 'status, Status desc' }, "Duplicate property named 'status' is not supported in '$orderby'.");
    rejectsQuery({ $orderby: 'machineTags' }, "The collection property 'machineTags' cannot be used in $orderby", M);
    rejectsQuery({ $orderby: 'constructor' }, "Could not find a property named 'constructor'");
  });

  it('$count, $select and $format with bad values', () => {
    rejectsQuery({ $count: 'yes' }, "'yes' is not a valid count option; use true or false.");
    rejectsQuery({ $count: '1' }, "'1' is not a valid count option");
    rejectsQuery({ $select: 'id,nope' }, "Could not find a property named 'nope' on type 'MachineAction'");
    rejectsQuery({ $select: 'id,,status' }, 'Syntax error in $select');
    rejectsQuery({ $select: 'osArchitecture' }, "Could not find a property named 'osArchitecture' on type 'Machine'", M);
    rejectsQuery({ $format: 'xml' }, "The $format 'xml' is not supported; only json is available.");
  });

  it('$stop and other unknown $-options, in the live wording', () => {
    rejectsQuery(
      { $stop: '10' },
      /^The query specified in the URI is not valid\. Custom query option '\$stop' that starts with '\$' is not supported\.$/,
    );
    rejectsQuery({ $filterx: 'a' }, "Custom query option '$filterx' that starts with '$' is not supported.");
    rejectsQuery({ $: '1' }, "Custom query option '$' that starts with '$' is not supported.");
    rejectsQuery({ '%24stop': '1' }, "Custom query option '$stop'");
  });

  it('$expand and other OData options these resources do not offer', () => {
    rejectsQuery({ $expand: 'commands' }, "Query option 'Expand' is not allowed on this resource.");
    rejectsQuery({ $search: 'x' }, "Query option 'Search' is not allowed");
    rejectsQuery({ $apply: 'x' }, "Query option 'Apply' is not allowed");
    rejectsQuery({ $skiptoken: 'x' }, "Query option 'SkipToken' is not allowed");
  });

  it('repeated options, including case and encoding variants', () => {
    const twice = "Query option '$top' was specified more than once, but it must be specified at most once.";
    rejectsQuery({ $top: ['1', '2'] }, twice);
    rejectsQuery({ $top: ['1', '1'] }, twice);
    rejectsQuery({ $top: '1', $TOP: '2' }, 'was specified more than once');
    rejectsQuery({ $top: '1', '%24top': '2' }, 'was specified more than once');
    rejectsQuery({ $filter: ["id eq 'a'", "id eq 'b'"] }, "Query option '$filter' was specified more than once");
  });

  it('empty option values', () => {
    rejectsQuery({ $filter: '' }, "The value for OData query '$filter' cannot be empty.");
    rejectsQuery({ $filter: '   ' }, "The value for OData query '$filter' cannot be empty.");
    rejectsQuery({ $top: '' }, "The value for OData query '$top' cannot be empty.");
    rejectsQuery({ $orderby: '' }, "The value for OData query '$orderby' cannot be empty.");
  });
});

describe('findbyip(…) segments', () => {
  const ts = '2026-11-29T05:24:41.0000000Z';

  it('the Cortex form and its variations', () => {
    assert.deepEqual(parseFindByIp("findbyip(ip='10.1.2.3',timestamp=2026-11-29T05:24:41Z)"), { ip: '10.1.2.3', timestamp: ts });
    assert.deepEqual(parseFindByIp("FindByIP(TIMESTAMP='2026-11-29T05:24:41Z', IP='10.1.2.3')"), { ip: '10.1.2.3', timestamp: ts });
    assert.deepEqual(parseFindByIp(' findbyip ( ip = 10.1.2.3 , timestamp = 2026-11-29T05:24:41Z ) '), { ip: '10.1.2.3', timestamp: ts });
    assert.deepEqual(parseFindByIp("findbyip(ip='10.248.240.38',timestamp=2019-09-22T08:44:05Z)"), {
      ip: '10.248.240.38',
      timestamp: '2019-09-22T08:44:05.0000000Z',
    });
  });

  it('IPv6 addresses, fractional seconds and offsets', () => {
    assert.deepEqual(parseFindByIp("findbyip(ip='FE80::1',timestamp=2026-11-29T05:24:41.5Z)"), {
      ip: 'fe80::1',
      timestamp: '2026-11-29T05:24:41.5000000Z',
    });
    assert.deepEqual(parseFindByIp("findbyip(ip='::ffff:10.1.2.3',timestamp=2026-11-29T07:24:41+02:00)"), {
      ip: '::ffff:10.1.2.3',
      timestamp: ts,
    });
    assert.deepEqual(parseFindByIp("findbyip(ip='10.1.2.3',timestamp=2026-11-29T07:24:41 02:00)").timestamp, ts);
  });

  it('a still percent-encoded segment is decoded once', () => {
    assert.deepEqual(parseFindByIp('findbyip(ip=%2710.1.2.3%27,timestamp=2026-11-29T05%3A24%3A41Z)'), { ip: '10.1.2.3', timestamp: ts });
  });

  it('a bad address is InvalidIpAddress', () => {
    for (const ip of ['10.1.2.300', 'not-an-ip', '10.1.2', '1.2.3.4.5', "10.1.2.3'x", ':::1']) {
      rejectsMde(() => parseFindByIp(`findbyip(ip='${ip.replace(/'/g, "''")}',timestamp=2026-11-29T05:24:41Z)`), 'InvalidIpAddress', /^IP address .* is invalid$/);
    }
  });

  it('everything else wrong is BadRequest', () => {
    const bad: Array<[string, RegExp]> = [
      ["findbyip(ip='10.1.2.3')", /Parameter timestamp is missing/],
      ['findbyip(timestamp=2026-11-29T05:24:41Z)', /Parameter ip is missing/],
      ['findbyip()', /Parameter ip is missing/],
      ["findbyip(ip='10.1.2.3',timestamp=yesterday)", /Timestamp yesterday is not a valid date-time/],
      ["findbyip(ip='10.1.2.3',timestamp=2026-02-30T00:00:00Z)", /is not a valid date-time/],
      ["findbyip(ip='10.1.2.3',timestamp=2026-11-29T05:24:41Z,port=1)", /Unknown parameter port in findbyip/],
      ["findbyip(ip='10.1.2.3',ip='10.1.2.4',timestamp=2026-11-29T05:24:41Z)", /Parameter ip is given more than once/],
      ["findbyip(ip='10.1.2.3,timestamp=2026-11-29T05:24:41Z)", /unterminated string/],
      ["findbyip(ip='10.1.2.3' timestamp=2026-11-29T05:24:41Z)", /',' or '\)' expected/],
      ["findbyip(ip='10.1.2.3',timestamp=2026-11-29T05:24:41Z", /Invalid function call/],
      ["findbyip(ip='10.1.2.3',timestamp=2026-11-29T05:24:41Z)x", /Invalid function call/],
      ["findbyname(ip='10.1.2.3',timestamp=2026-11-29T05:24:41Z)", /Invalid function call/],
      ["findbyip(ip,timestamp=2026-11-29T05:24:41Z)", /'=' expected after ip/],
      ["findbyip(ip='',timestamp=2026-11-29T05:24:41Z)", /Parameter ip is empty/],
      ["findbyip(ip='10.1.2.3',,timestamp=2026-11-29T05:24:41Z)", /a parameter name expected/],
      ['findbyip', /Invalid function call/],
    ];
    for (const [segment, message] of bad) rejectsMde(() => parseFindByIp(segment), 'BadRequest', message);
  });
});

describe('index calls', () => {
  const NAME = 'GetLiveResponseResultDownloadLink';

  it('reads the index, with any casing and spacing', () => {
    assert.equal(parseIndexCall('GetLiveResponseResultDownloadLink(index=0)', NAME), 0);
    assert.equal(parseIndexCall('getliveresponseresultdownloadlink(Index=3)', NAME), 3);
    assert.equal(parseIndexCall(" GetLiveResponseResultDownloadLink ( INDEX = '12' ) ", NAME), 12);
    assert.equal(parseIndexCall('GetLiveResponseResultDownloadLink(index%3D2)', NAME), 2);
  });

  it('rejects anything else with BadRequest', () => {
    const bad: Array<[string, RegExp]> = [
      ['GetLiveResponseResultDownloadLink(index=-1)', /Index -1 is invalid/],
      ['GetLiveResponseResultDownloadLink(index=abc)', /Index abc is invalid/],
      ['GetLiveResponseResultDownloadLink(index=1.5)', /Index 1.5 is invalid/],
      ['GetLiveResponseResultDownloadLink(index=2147483648)', /Index 2147483648 is invalid/],
      ['GetLiveResponseResultDownloadLink(index=99999999999999999999)', /is invalid/],
      ['GetLiveResponseResultDownloadLink()', /Parameter index is missing/],
      ['GetLiveResponseResultDownloadLink(idx=0)', /Unknown parameter idx/],
      ['GetLiveResponseResultDownloadLink(index=0,index=1)', /given more than once/],
      ['GetLiveResponseResultDownloadLink(index=0', /Invalid function call/],
      ['GetPackageUri(index=0)', /Invalid function call/],
      ['GetLiveResponseResultDownloadLink', /Invalid function call/],
    ];
    for (const [segment, message] of bad) rejectsMde(() => parseIndexCall(segment, NAME), 'BadRequest', message);
  });
});

describe('Fastify hands the parser decoded query options', () => {
  /** Sends a raw, unnormalized request path, as the clients in §10.3 do, and returns the parsed query. */
  async function roundTrip(port: number, path: string): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path, method: 'GET' }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  it('percent-encoded and raw forms, + as space, repeated options, unencoded + in an offset', async () => {
    const app = Fastify();
    app.get('/api/machines', async (req, reply) => {
      try {
        return parseListQuery(req.query as Record<string, string | string[]>, MACHINE_FIELDS);
      } catch (err) {
        return reply.code(400).send({ error: { code: '', message: (err as Error).message, details: [] } });
      }
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
    try {
      const { port } = app.server.address() as AddressInfo;

      const xsoar = await roundTrip(port, '/api/machines?%24filter=computerDnsName+eq+%27pc1%27+and+riskScore+eq+%27High%27&%24top=100');
      assert.equal(xsoar.status, 200);
      assert.deepEqual(xsoar.body.filter, and(cmp('computerDnsName', 'eq', str('pc1')), cmp('riskScore', 'eq', str('High'))));
      assert.equal(xsoar.body.top, 100);

      const cortex = await roundTrip(port, "/api/machines?$filter=computerDnsName+eq+'pc1.contoso.local'");
      assert.deepEqual(cortex.body.filter, cmp('computerDnsName', 'eq', str('pc1.contoso.local')));

      const r7 = await roundTrip(port, '/api/machines?%24top=10000');
      assert.equal(r7.body.top, 10000);

      const spaces = await roundTrip(port, '/api/machines?$filter=computerDnsName%20eq%20%27a+b%27&_=123');
      assert.deepEqual(spaces.body.filter, cmp('computerDnsName', 'eq', str('a b')));

      const plusKept = await roundTrip(port, '/api/machines?$filter=computerDnsName%20eq%20%27a%2Bb%27');
      assert.deepEqual(plusKept.body.filter, cmp('computerDnsName', 'eq', str('a+b')));

      const offset = await roundTrip(port, '/api/machines?$filter=lastSeen+gt+2024-01-01T10:00:00+02:00');
      assert.deepEqual(offset.body.filter, cmp('lastSeen', 'gt', dt('2024-01-01T08:00:00.0000000Z')));

      const kibana = await roundTrip(port, "/api/machines?$filter=id+in+('a','b')+AND+riskScore+in+('High')&$count=true");
      assert.equal(kibana.body.count, true);
      assert.equal(kibana.body.filter.kind, 'and');

      const repeated = await roundTrip(port, '/api/machines?$top=1&%24top=2');
      assert.equal(repeated.status, 400);
      assert.match(repeated.body.error.message, /Query option '\$top' was specified more than once/);

      const stop = await roundTrip(port, '/api/machines?$stop=1');
      assert.equal(stop.status, 400);
      assert.equal(
        stop.body.error.message,
        "The query specified in the URI is not valid. Custom query option '$stop' that starts with '$' is not supported.",
      );
    } finally {
      await app.close();
    }
  });
});
