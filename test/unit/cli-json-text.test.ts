import { arrayElementSpans, memberValueSpan } from '../../cli/shared/json-text';
import { minifyJson } from '../../lambda/core/records';

describe('JSON text spans', () => {
  it.each([
    ['[]', []],
    [
      '[ 1 , "a,]" ,{"x":[1,{"y":"}"}]}, null,true ]',
      ['1', '"a,]"', '{"x":[1,{"y":"}"}]}', 'null', 'true'],
    ],
    ['[\n  {"s":"\\\\"},\n  -1.5e3\n]', ['{"s":"\\\\"}', '-1.5e3']],
  ])('splits the elements of %s', (text, expected) => {
    expect(arrayElementSpans(text, 0).map(([s, e]) => text.slice(s, e))).toEqual(expected);
  });

  it('finds a member of an object among others', () => {
    const text = '{ "a" : {"Records":1}, "Records" : [1,2] , "z":"Records"}';
    const span = memberValueSpan(text, 0, 'Records');
    expect(span && text.slice(span[0], span[1])).toBe('[1,2]');
    expect(memberValueSpan(text, 0, 'missing')).toBeUndefined();
  });

  it('removes whitespace outside strings only', () => {
    expect(minifyJson('{ "a b" : [ 1 ,\n\t2 ], "c":" x\\" y " }')).toBe(
      '{"a b":[1,2],"c":" x\\" y "}',
    );
  });

  it('leaves compact text as it is', () => {
    const text = '{"eventID":"1","n":1.0}';
    expect(minifyJson(text)).toBe(text);
  });
});
