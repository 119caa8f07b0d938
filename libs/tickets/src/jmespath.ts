import * as jmespath from 'jmespath';

/** Evaluates a JMESPath expression (https://jmespath.org) over a document. */
export const search: (document: unknown, expression: string) => unknown = jmespath.search;

/** Parses an expression, throwing on a syntax error. jmespath.js exports it; @types/jmespath 0.15 leaves it out. */
export const compile = (jmespath as unknown as { compile: (expression: string) => unknown }).compile;
