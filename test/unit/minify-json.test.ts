import fc from 'fast-check';
import { arrayElementSpans } from '../../cli/shared/json-text';
import { minifyJson } from '../../lambda/core/records';

// One minifier serves two callers: ingest minifies a producer's whole eventData before storing
// it, and `opentrail put-events` minifies each record's span of a file it reads. Both need the
// same bytes: the value as its source spelled it, without insignificant whitespace.

/** JSON values whose strings carry spaces, quotes, backslashes and non-ASCII. */
const jsonValue = fc.jsonValue({ maxDepth: 4 });
const indent = fc.constantFrom(0, 1, 2, '\t', ' \r\n ');

describe('minifyJson, the one survivor', () => {
  it('gives ingest the compact spelling of a whole pretty-printed record', () => {
    fc.assert(
      fc.property(jsonValue, indent, (value, space) => {
        const pretty = `\n ${JSON.stringify(value, null, space)} \t`;
        expect(minifyJson(pretty)).toBe(JSON.stringify(value));
      }),
    );
  });

  it('gives put-events the compact spelling of each element span of a file, nothing around it', () => {
    fc.assert(
      fc.property(fc.array(jsonValue, { minLength: 1, maxLength: 5 }), indent, (values, space) => {
        const file = `{ "Records" : ${JSON.stringify(values, null, space)} }`;
        const spans = arrayElementSpans(file, file.indexOf('['));
        expect(spans.map(([start, end]) => minifyJson(file, start, end))).toEqual(
          values.map((v) => JSON.stringify(v)),
        );
      }),
    );
  });

  it('returns what put-events sent unchanged when ingest minifies it again', () => {
    fc.assert(
      fc.property(jsonValue, indent, (value, space) => {
        const file = `[${JSON.stringify(value, null, space)}]`;
        const [span] = arrayElementSpans(file, 0);
        const sent = minifyJson(file, span![0], span![1]);
        expect(minifyJson(sent.trim())).toBe(sent);
      }),
    );
  });
});
