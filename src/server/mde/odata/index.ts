// The OData surface of the MDE routes: list-query options and function-call path segments.
export { parseListQuery, MAX_SKIP, type ListQueryOptions, type ParsedListQuery } from './listQuery.ts';
export { parseFilter, FILTER_LIMITS, type FilterLimits } from './filter.ts';
export { parseFindByIp, parseIndexCall, type FindByIpCall } from './functionCalls.ts';
export { INVALID_QUERY } from './invalid.ts';
